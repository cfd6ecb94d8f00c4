// kubectl bg rollback APP: back to the colour that was live before the last
// switch. If it has been scaled down since, scale it up and wait for it first.
import type { Command } from 'commander';
import { type Context, type GlobalOptions, openSession } from '../context.ts';
import { parseTimeout } from '../flags.ts';
import { runSwitch } from './switch.ts';

export function register(program: Command, ctx: Context, done: (code: number) => void): void {
  program
    .command('rollback')
    .description('Send the traffic back to the previous colour (scaling it up first if it was scaled down)')
    .argument('<app>', 'app name (label bluegreen.io/app)')
    .option('--dry-run', 'print what would change and ask the API server (dryRun=All); change nothing')
    .option('--wait', "return once the Service's EndpointSlices hold only the previous colour's ready pods")
    .option('--timeout <duration>', 'how long to wait for a scaled-down colour, and for --wait', '5m')
    .option('--force', 'roll back although the previous colour is not fully available')
    .action(async (app: string, o: { dryRun: boolean; wait: boolean; timeout: string; force: boolean }, cmd: Command) => {
      const timeout = parseTimeout('--timeout', o.timeout);
      const s = await openSession(ctx, cmd.optsWithGlobals<GlobalOptions>());
      try {
        done(await runSwitch(s, app, { kind: 'rollback', dryRun: !!o.dryRun, wait: !!o.wait, timeout, force: !!o.force }));
      } finally {
        s.cluster.close();
      }
    });
}
