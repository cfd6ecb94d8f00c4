// The `kubectl bg` program: commander, with the output and exit codes under
// our control (exitOverride, configureOutput), so tests run it in-process.
import { Command, CommanderError } from 'commander';
import { isApiError } from './cluster.ts';
import * as abort from './commands/abort.ts';
import * as check from './commands/check.ts';
import * as completion from './commands/completion.ts';
import * as history from './commands/history.ts';
import * as init from './commands/init.ts';
import * as rollback from './commands/rollback.ts';
import * as status from './commands/status.ts';
import * as switchCmd from './commands/switch.ts';
import { complete, formatCompletions } from './completions.ts';
import { type Context, paintFor } from './context.ts';
import { CliError, EXIT, EXIT_CODES_HELP } from './exit-codes.ts';

export const VERSION = '0.1.0';

export function buildProgram(ctx: Context, done: (code: number) => void = () => {}): Command {
  const program = new Command('kubectl bg');
  program
    .description('Blue-green deployments with two ordinary Deployments and one Service: status, switch, rollback and the rest.')
    .version(VERSION, '--version', 'print the version')
    .option('--kubeconfig <path>', 'path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)')
    .option('--context <name>', 'the kubeconfig context to use')
    .option('-n, --namespace <name>', "the namespace (default: the context's namespace)")
    .option('--no-color', 'never colour the output (also NO_COLOR=1; colour is only used on a terminal)')
    .configureOutput({
      writeOut: (str) => void ctx.out.write(str),
      writeErr: (str) => void ctx.err.write(str),
    })
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .addHelpText(
      'after',
      `
${EXIT_CODES_HELP}

Every refusal names its reason and the command that moves things forward.
Docs: plugin/README.md.`,
    );
  status.register(program, ctx, done);
  switchCmd.register(program, ctx, done);
  rollback.register(program, ctx, done);
  check.register(program, ctx, done);
  init.register(program, ctx, done);
  history.register(program, ctx, done);
  abort.register(program, ctx, done);
  completion.register(program, ctx, done);
  return program;
}

const HELP_CODES = new Set(['commander.helpDisplayed', 'commander.help', 'commander.version']);

/** Runs `kubectl bg <argv...>`; resolves to the exit code. */
export async function runCli(argv: readonly string[], ctx: Context): Promise<number> {
  if (argv[0] === '__complete') {
    ctx.out.write(formatCompletions(await complete(buildProgram(ctx), argv.slice(1), ctx)));
    return EXIT.OK;
  }
  let code: number = EXIT.OK;
  const program = buildProgram(ctx, (c) => (code = c));
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (e) {
    return report(e, ctx, program);
  }
}

function report(e: unknown, ctx: Context, program: Command): number {
  if (e instanceof CommanderError) return HELP_CODES.has(e.code) ? EXIT.OK : EXIT.USAGE;
  const paint = paintFor(ctx, program.opts());
  const err = (s: string) => void ctx.err.write(s);
  if (e instanceof CliError) {
    err(`${paint.paint('red', 'error:')} ${e.message}\n`);
    if (e.hint) err(`hint: ${e.hint}\n`);
    return e.code;
  }
  if (isApiError(e)) {
    err(`${paint.paint('red', 'Error from server')} (${e.reason}): ${e.message}\n`);
    return EXIT.ERROR;
  }
  err(`${paint.paint('red', 'error:')} ${(e as Error)?.message ?? String(e)}\n`);
  return EXIT.ERROR;
}
