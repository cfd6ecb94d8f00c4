// kubectl bg history APP [-o json|yaml]: the switches recorded on the active Service.
import type { Command } from 'commander';
import YAML from 'yaml';
import { resolveApp } from '../../../src/core/app.ts';
import { historyOf, type SwitchRecord } from '../../../src/core/history.ts';
import { requireApp } from '../app-objects.ts';
import { type Context, type GlobalOptions, openSession, type Session } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { type OutputFormat, parseOutput } from '../flags.ts';
import { renderHistory } from '../render/history.ts';

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

export async function runHistory(s: Session, app: string, output: OutputFormat): Promise<number> {
  const view = resolveApp(await requireApp(s.cluster, s.namespace, app));
  if (!view.active) throw new CliError(view.problems[0] ?? `app ${app} has no active Service`, EXIT.ERROR, `kubectl bg status ${app}`);
  const parsed = historyOf(view.active);
  if (parsed.error) s.err(`warning: Service ${view.active.metadata.name}: ${parsed.error}\n`);
  const doc: HistoryDocument = { app, namespace: s.namespace, activeService: view.active.metadata.name ?? '', items: parsed.records };
  if (output === 'json') s.out(`${JSON.stringify(doc, null, 2)}\n`);
  else if (output === 'yaml') s.out(YAML.stringify(doc));
  else if (parsed.records.length === 0) s.err(`No switches recorded for app ${app} in ${s.namespace} namespace.\n`);
  else s.out(renderHistory(parsed.records, s.paint, s.ctx.now(), output === 'wide'));
  return EXIT.OK;
}
