// kubectl bg abort APP [--scale-down] [--dry-run]: undo a pending rollout of the idle colour.
// Reads the app, plans (src/core/abort-plan.ts), patches, and says what it did; a patch that
// lost a race with another writer is planned again from a fresh read.
import type { Command } from 'commander';
import { planAbort } from '../../../src/core/abort-plan.ts';
import { resolveApp } from '../../../src/core/app.ts';
import { requireApp } from '../app-objects.ts';
import { isAdmissionDenial, isStatus } from '../cluster.ts';
import { type Context, type GlobalOptions, nsFlag, openSession, type Session } from '../context.ts';
import { EXIT, refused } from '../exit-codes.ts';
import { describeAbort } from '../render/abort.ts';

export interface AbortFlags {
  dryRun: boolean;
  scaleDown: boolean;
}

export const ABORT_RETRIES = 3;

export function register(program: Command, ctx: Context, done: (code: number) => void): void {
  program
    .command('abort')
    .description("Undo a pending rollout of the idle colour: set its pod template back to the live colour's")
    .argument('<app>', 'app name (label bluegreen.io/app)')
    .option('--scale-down', 'also scale the idle colour to 0 replicas')
    .option('--dry-run', 'print what would change and ask the API server (dryRun=All); change nothing')
    .action(async (app: string, o: AbortFlags, cmd: Command) => {
      const s = await openSession(ctx, cmd.optsWithGlobals<GlobalOptions>());
      try {
        done(await runAbort(s, app, { dryRun: !!o.dryRun, scaleDown: !!o.scaleDown }));
      } finally {
        s.cluster.close();
      }
    });
}

export async function runAbort(s: Session, app: string, f: AbortFlags): Promise<number> {
  const { cluster, namespace: ns, paint: p } = s;
  for (let attempt = 0; ; attempt++) {
    const view = resolveApp(await requireApp(cluster, ns, app));
    const plan = planAbort(view, f.scaleDown);
    if (!plan.ok) throw refused(plan.reason, plan.hint);
    const idleName = plan.idle.metadata.name ?? '';
    if (attempt === 0) s.out(describeAbort(view, plan, { dryRun: f.dryRun, scaleDown: f.scaleDown }, p));
    try {
      await cluster.patchDeployment(ns, idleName, plan.patch, 'json', { dryRun: f.dryRun });
    } catch (e) {
      if (isAdmissionDenial(e)) throw refused(`the API server refused to change ${idleName}: ${(e as Error).message}`);
      // A failed resourceVersion test (422) or a conflict (409): the Deployment changed since it was read.
      if (isStatus(e, 409, 422) && attempt < ABORT_RETRIES) {
        const now = await cluster.getDeployment(ns, idleName);
        if (now && now.metadata.resourceVersion !== plan.idle.metadata.resourceVersion) {
          s.err(`${idleName} changed since it was read; reading it again (retry ${attempt + 1} of ${ABORT_RETRIES})\n`);
          continue;
        }
      }
      throw e;
    }
    if (f.dryRun) s.out('server dry run: accepted by the API server and its admission webhooks; nothing was changed\n');
    else
      s.out(
        `aborted: ${idleName} is back to the live version of ${app}` +
          (f.scaleDown
            ? ' and scaled down\n'
            : `; its pods roll back to it now (to free them: 'kubectl scale deployment/${idleName}${nsFlag(ns)} --replicas=0')\n`),
      );
    return EXIT.OK;
  }
}
