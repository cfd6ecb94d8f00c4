// kubectl bg status [APP] [-A] [-o json|yaml|wide] [--watch]
import type { Command } from 'commander';
import YAML from 'yaml';
import { resolveApp } from '../../../src/core/app.ts';
import { type AppStatus, appStatus } from '../../../src/core/status.ts';
import { fetchApp, listApps, notEnrolled, withHpas } from '../app-objects.ts';
import { type Context, type GlobalOptions, openSession, type Session } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { type OutputFormat, parseOutput, parseTimeout } from '../flags.ts';
import { renderTable, renderTree } from '../render/status.ts';

export interface StatusFlags {
  app?: string;
  allNamespaces: boolean;
  output: OutputFormat;
  watch: boolean;
  /** Seconds between polls with --watch. */
  interval: number;
}

/** Clear the screen and home the cursor (a redraw on a terminal). */
export const CLEAR = '\x1b[H\x1b[2J';

export function register(program: Command, ctx: Context, done: (code: number) => void): void {
  program
    .command('status')
    .description('Show where an app stands (or every app in the namespace): live colour, images, replicas, phase, last switch')
    .argument('[app]', 'app name (label bluegreen.io/app); all apps when omitted')
    .option('-A, --all-namespaces', 'every app in every namespace')
    .option('-o, --output <format>', 'json | yaml | wide')
    .option('-w, --watch', 'keep watching; redraw when something changes')
    .option('--interval <duration>', 'poll interval with --watch', '1s')
    .addHelpText(
      'after',
      `
Phases: stable, idle-rolling-out, checking, check-failed, ready-to-switch, degraded.
-o json prints one AppStatus for an app, {"items": [AppStatus...]} otherwise (see plugin/README.md).`,
    )
    .action(async (app: string | undefined, o: { allNamespaces: boolean; output?: string; watch: boolean; interval: string }, cmd: Command) => {
      const flags: StatusFlags = {
        app,
        allNamespaces: !!o.allNamespaces,
        output: parseOutput(o.output),
        watch: !!o.watch,
        interval: parseTimeout('--interval', o.interval),
      };
      if (app && flags.allNamespaces) throw new CliError('an app name and -A/--all-namespaces cannot be combined', EXIT.USAGE);
      const s = await openSession(ctx, cmd.optsWithGlobals<GlobalOptions>());
      try {
        done(await runStatus(s, flags));
      } finally {
        s.cluster.close();
      }
    });
}

/** What one look at the cluster shows: the document for -o json|yaml and the text to print. */
export interface Snapshot {
  data: AppStatus | { items: AppStatus[] };
  text: string;
  /** Goes to stderr when not watching (kubectl prints "No resources found" there). */
  notice?: boolean;
}

export async function snapshot(s: Session, f: StatusFlags): Promise<Snapshot> {
  const now = s.ctx.now();
  const ro = { paint: s.paint, now, wide: f.output === 'wide' };
  if (f.app) {
    const objs = await fetchApp(s.cluster, s.namespace, f.app);
    if (!objs) throw notEnrolled(s.namespace, f.app);
    const [withHpa] = await withHpas(s.cluster, s.namespace, [objs]);
    const st = appStatus(resolveApp(withHpa!));
    return { data: st, text: format(st, f.output) ?? renderTree(st, ro) };
  }
  const ns = f.allNamespaces ? undefined : s.namespace;
  const items = (await withHpas(s.cluster, ns, await listApps(s.cluster, ns))).map((a) => appStatus(resolveApp(a)));
  const data = { items };
  const doc = format(data, f.output);
  if (doc !== undefined) return { data, text: doc };
  if (items.length === 0) return { data, text: `No blue-green apps found${ns ? ` in ${ns} namespace` : ''}.\n`, notice: true };
  return { data, text: renderTable(items, { ...ro, allNamespaces: f.allNamespaces }) };
}

function format(data: unknown, output: OutputFormat): string | undefined {
  if (output === 'json') return `${JSON.stringify(data, null, 2)}\n`;
  if (output === 'yaml') return YAML.stringify(data);
  return undefined;
}

export async function runStatus(s: Session, f: StatusFlags): Promise<number> {
  const first = await snapshot(s, f); // not enrolled, API errors: fail at once, watching or not
  if (!f.watch) {
    if (first.notice) s.err(first.text);
    else s.out(first.text);
    return EXIT.OK;
  }
  const signal = s.ctx.signal;
  let last: string | undefined;
  let next: string = first.text;
  const structured = f.output === 'json' || f.output === 'yaml';
  for (;;) {
    if (next !== last) {
      if (s.ctx.isTTY && !structured) s.out(CLEAR + next);
      else if (last === undefined) s.out(next);
      else s.out(f.output === 'yaml' ? `---\n${next}` : structured ? next : `\n${next}`);
      last = next;
    }
    if (signal?.aborted) return EXIT.OK;
    await s.ctx.sleep(f.interval * 1000, signal);
    if (signal?.aborted) return EXIT.OK;
    try {
      next = (await snapshot(s, f)).text;
    } catch (e) {
      next = `error: ${(e as Error).message}\n`;
    }
  }
}
