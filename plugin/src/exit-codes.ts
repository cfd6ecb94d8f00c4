// Exit codes of `kubectl bg`, for scripts. Documented in `kubectl bg --help` and plugin/README.md.
export const EXIT = {
  /** Done (or nothing to do, e.g. `init` of an app already enrolled). */
  OK: 0,
  /** An error: the app is not enrolled or not found, the API server failed or refused for another reason (RBAC, conflict after retries), bad kubeconfig. */
  ERROR: 1,
  /** A precondition is not met: the switch was refused (idle colour not ready, nothing to abort, already live), or an admission webhook/policy refused the change. */
  PRECONDITION: 2,
  /** --wait or --timeout ran out before the cluster reached the expected state. */
  TIMEOUT: 3,
  /** Usage error: unknown command or flag, missing or invalid argument. */
  USAGE: 64,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const EXIT_CODES_HELP = `Exit codes:
  0   done (or nothing to do)
  1   error: app not enrolled or not found, API error, bad kubeconfig
  2   precondition not met: switch/rollback/abort refused (idle colour not ready,
      nothing to abort, ...) or a change refused by the admission webhook
  3   timeout: --wait/--timeout ran out
  64  usage error: unknown command or flag, missing or invalid argument`;

/** An error that ends the command with a message, an optional next command, and an exit code. */
export class CliError extends Error {
  readonly code: ExitCode;
  readonly hint: string | undefined;
  constructor(message: string, code: ExitCode = EXIT.ERROR, hint?: string) {
    super(message);
    this.name = 'CliError';
    this.code = code;
    this.hint = hint;
  }
}

export const usageError = (message: string, hint?: string) => new CliError(message, EXIT.USAGE, hint);
export const refused = (message: string, hint?: string) => new CliError(message, EXIT.PRECONDITION, hint);
export const timedOut = (message: string, hint?: string) => new CliError(message, EXIT.TIMEOUT, hint);
