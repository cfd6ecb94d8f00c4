// What every command runs with, injected: output streams, environment, clock,
// sleep, and how to reach the cluster. main.ts builds the real one; tests build
// their own (a fake Cluster, a fixed clock, a sleep that advances it).
import type { Cluster } from './cluster.ts';
import { CliError, EXIT } from './exit-codes.ts';
import { colourWanted, type Painter, painter } from './render/paint.ts';

export interface TextSink {
  write(chunk: string): unknown;
}

export interface ConnectOptions {
  kubeconfig?: string;
  context?: string;
  /** Send every request as this user in these groups (impersonation headers), in place of the kubeconfig's. */
  impersonate?: { user: string; groups: string[] };
}

export interface Context {
  out: TextSink;
  err: TextSink;
  env: Readonly<Record<string, string | undefined>>;
  /** stdout is a terminal: colour allowed, --watch redraws in place. */
  isTTY: boolean;
  now(): Date;
  /** Resolves after ms, or at once when signal aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** The cluster client factory (kubeconfig from --kubeconfig, else KUBECONFIG, else ~/.kube/config). */
  connect(opts: ConnectOptions): Promise<Cluster>;
  /** Aborted on SIGINT/SIGTERM: ends --watch and waits. */
  signal?: AbortSignal;
}

/** kubectl's global flags, as parsed by commander (program-level options). */
export interface GlobalOptions {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  /** false with --no-color. */
  color?: boolean;
}

export interface Session {
  ctx: Context;
  cluster: Cluster;
  /** -n, else the context's namespace, else "default". */
  namespace: string;
  /** Whether -n was given (messages then always name the namespace). */
  explicitNamespace: boolean;
  paint: Painter;
  /** Set with --break-glass: every request goes as this user in this group (and system:authenticated). */
  breakGlass?: { user: string; group: string };
  out(text: string): void;
  err(text: string): void;
}

/**
 * The groups a break-glass request carries. system:authenticated is named (the API server would
 * add it anyway) so the identity is exactly what the chart's ClusterRole allows impersonating.
 */
export const breakGlassGroups = (group: string) => [group, 'system:authenticated'];

export function paintFor(ctx: Context, g: GlobalOptions): Painter {
  return painter(colourWanted({ isTTY: ctx.isTTY, color: g.color !== false, env: ctx.env }));
}

export async function openSession(ctx: Context, g: GlobalOptions, o: { breakGlassGroup?: string } = {}): Promise<Session> {
  const connect = async (impersonate?: ConnectOptions['impersonate']) => {
    try {
      return await ctx.connect({ kubeconfig: g.kubeconfig, context: g.context, ...(impersonate ? { impersonate } : {}) });
    } catch (e) {
      throw new CliError(`cannot load the kubeconfig: ${(e as Error).message}`, EXIT.ERROR);
    }
  };
  let cluster: Cluster = await connect();
  let breakGlass: Session['breakGlass'];
  if (o.breakGlassGroup !== undefined) {
    // Impersonation names a user; break-glass keeps yours (the audit log shows both), so the
    // API server asks who the credentials are first.
    const user = await cluster.whoAmI();
    cluster.close();
    if (!user)
      throw new CliError(
        'break-glass: the API server did not say who you are (SelfSubjectReview), so there is no user name to act as',
        EXIT.ERROR,
        'kubectl auth whoami',
      );
    breakGlass = { user, group: o.breakGlassGroup };
    cluster = await connect({ user, groups: breakGlassGroups(o.breakGlassGroup) });
  }
  return {
    ctx,
    cluster,
    namespace: g.namespace || cluster.defaultNamespace || 'default',
    explicitNamespace: !!g.namespace,
    paint: paintFor(ctx, g),
    ...(breakGlass ? { breakGlass } : {}),
    out: (t) => void ctx.out.write(t),
    err: (t) => void ctx.err.write(t),
  };
}

export { nsFlag } from '../../src/core/commands.ts';
