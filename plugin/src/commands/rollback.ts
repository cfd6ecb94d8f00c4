// kubectl bg rollback APP: back to the colour that was live before the last
// switch. If it has been scaled down since, scale it up and wait for it first.
import type { Command } from 'commander';
import type { Context, GlobalOptions } from '../context.ts';
import { parseTimeout } from '../flags.ts';
import { addBreakGlassOptions, parseBreakGlass, runSwitchCommand } from './switch.ts';

export function register(program: Command, ctx: Context, done: (code: number) => void): void {
  const command = program
    .command('rollback')
    .description('Send the traffic back to the previous colour (scaling it up first if it was scaled down)')
    .argument('<app>', 'app name (label bluegreen.io/app)')
    .option('--dry-run', 'print what would change and ask the API server (dryRun=All); change nothing')
    .option('--wait', "return once the Service's EndpointSlices hold only the previous colour's ready pods")
    .option('--timeout <duration>', 'how long to wait for a scaled-down colour, and for --wait', '5m')
    .option('--force', 'roll back although the previous colour is not fully available');
  addBreakGlassOptions(command)
    .addHelpText(
      'after',
      `
While no kube-bluegreen webhook replica answers (failurePolicy Fail refuses every change to the app):
  kubectl bg rollback shop --break-glass
acts as you in the group kube-bluegreen:break-glass, which the webhooks skip; the cluster policy
still applies. It needs an admin to bind the chart's ClusterRole <release>-break-glass to you
(README.md, Troubleshooting).`,
    )
    .action(
      async (
        app: string,
        o: { dryRun: boolean; wait: boolean; timeout: string; force: boolean; breakGlass?: boolean; breakGlassGroup?: string },
        cmd: Command,
      ) => {
        const timeout = parseTimeout('--timeout', o.timeout);
        const flags = { kind: 'rollback' as const, dryRun: !!o.dryRun, wait: !!o.wait, timeout, force: !!o.force };
        done(await runSwitchCommand(ctx, cmd.optsWithGlobals<GlobalOptions>(), app, flags, parseBreakGlass(o, cmd)));
      },
    );
}
