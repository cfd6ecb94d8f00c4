// kubectl bg history APP [-o json|yaml]: the switches recorded on the active Service.
import type { Command } from 'commander';
import YAML from 'yaml';
import { resolveApp } from '../../../src/core/app.ts';
import { parseHistory, type SwitchRecord } from '../../../src/core/history.ts';
import { annotationsOf } from '../../../src/core/k8s-types.ts';
import { HISTORY_ANNOTATION } from '../../../src/core/labels.ts';
import { requireApp } from '../app-objects.ts';
import { type Context, type GlobalOptions, openSession, type Session } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { type OutputFormat, parseOutput } from '../flags.ts';
import { colourStyle, type Painter } from '../render/paint.ts';
import { table } from '../render/table.ts';
import { relative } from '../render/time.ts';

export interface HistoryDocument {
  app: string;
  namespace: string;
  activeService: string;
  /** Oldest first, as stored (the newest 20 are kept). */
  items: SwitchRecord[];
}

export function register(program: Command, ctx: Context, done: (code: number) => void): void {
  program
    .command('history')
    .description("List the app's recorded switches and rollbacks, oldest first")
    .argument('<app>', 'app name (label bluegreen.io/app)')
    .option('-o, --output <format>', 'json | yaml | wide')
    .action(async (app: string, o: { output?: string }, cmd: Command) => {
      const output = parseOutput(o.output);
      const s = await openSession(ctx, cmd.optsWithGlobals<GlobalOptions>());
      try {
        done(await runHistory(s, app, output));
      } finally {
        s.cluster.close();
      }
    });
}

export function renderHistory(items: readonly SwitchRecord[], p: Painter, now: Date, wide = false): string {
  const c = (x: string) => p.paint(colourStyle(x), x);
  // Why, when any record says (a rollback after a failed post-switch check, say).
  const reasons = items.some((r) => r.reason);
  return table(
    ['#', 'KIND', 'FROM', 'TO', 'AGE', 'BY', 'IMAGES', ...(wide ? ['AT', 'FROM TEMPLATE', 'TO TEMPLATE'] : []), ...(reasons ? ['REASON'] : [])],
    items.map((r, i) => [
      String(i + 1),
      r.kind + (r.forced ? ' (forced)' : '') + (r.breakGlass ? ' (break-glass)' : ''),
      c(r.from),
      c(r.to),
      relative(r.at, now).replace(/ ago$/, ''),
      r.by ?? '<unknown>',
      (r.images ?? []).join(' ') || '<none>',
      ...(wide ? [r.at, r.fromTemplate ?? '<none>', r.toTemplate ?? '<none>'] : []),
      ...(reasons ? [r.reason ?? ''] : []),
    ]),
  );
}

export async function runHistory(s: Session, app: string, output: OutputFormat): Promise<number> {
  const view = resolveApp(await requireApp(s.cluster, s.namespace, app));
  if (!view.active) throw new CliError(view.problems[0] ?? `app ${app} has no active Service`, EXIT.ERROR, `kubectl bg status ${app}`);
  const parsed = parseHistory(annotationsOf(view.active)[HISTORY_ANNOTATION]);
  if (parsed.error) s.err(`warning: Service ${view.active.metadata.name}: ${parsed.error}\n`);
  const doc: HistoryDocument = { app, namespace: s.namespace, activeService: view.active.metadata.name ?? '', items: parsed.records };
  if (output === 'json') s.out(`${JSON.stringify(doc, null, 2)}\n`);
  else if (output === 'yaml') s.out(YAML.stringify(doc));
  else if (parsed.records.length === 0) s.err(`No switches recorded for app ${app} in ${s.namespace} namespace.\n`);
  else s.out(renderHistory(parsed.records, s.paint, s.ctx.now(), output === 'wide'));
  return EXIT.OK;
}
