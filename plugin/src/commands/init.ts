// kubectl bg init APP --from deployment/NAME [--service NAME] [--slot-label KEY] [--keep-source]
//
// Enrols an app: reads the namespace, plans (src/core/init-plan.ts: copy a plain Deployment
// into two colours, or adopt colours that exist), runs the steps and says what it did. Every
// step already done is skipped, so running init again (or after an interruption) finishes the
// job or says the app is already enrolled.
import type { Command } from 'commander';
import { formatDuration } from '../../../src/core/duration.ts';
import { planInit } from '../../../src/core/init-plan.ts';
import type { Deployment } from '../../../src/core/k8s-types.ts';
import { labelsOf } from '../../../src/core/k8s-types.ts';
import { APP_LABEL, DEFAULT_SLOT_LABEL, otherColour } from '../../../src/core/labels.ts';
import { isAdmissionDenial, isAlreadyExists, isConflict } from '../cluster.ts';
import { type Context, type GlobalOptions, nsFlag, openSession, type Session } from '../context.ts';
import { CliError, EXIT, refused, usageError } from '../exit-codes.ts';
import { parseDeploymentRef, parseTimeout } from '../flags.ts';
import { waitForDeployment } from '../wait.ts';

export interface InitFlags {
  from?: string;
  service?: string;
  slotLabel?: string;
  keepSource: boolean;
  dryRun: boolean;
  /** Seconds to wait for the live colour to be available. */
  timeout: number;
  pollMs?: number;
}

export function register(program: Command, ctx: Context, done: (code: number) => void): void {
  program
    .command('init')
    .description('Enrol an existing Deployment and its Service as a blue-green app (safe to run twice)')
    .argument('<app>', 'app name: the value of label bluegreen.io/app on its objects')
    .option('--from <deployment/NAME>', 'the existing Deployment to start from')
    .option('--service <name>', 'the Service carrying the traffic (default: the Service named APP, or the one selecting the pods)')
    .option('--slot-label <key>', `pod label key holding the colour (default: detected, else ${DEFAULT_SLOT_LABEL})`)
    .option('--keep-source', 'do not delete the source Deployment once the blue copy serves the traffic')
    .option('--dry-run', 'print what would change; change nothing')
    .option('--timeout <duration>', 'how long to wait for the live colour to be available', '5m')
    .addHelpText(
      'after',
      `
A single Deployment "shop" (no colour yet) becomes shop-blue (a copy, live) and
shop-green (a copy scaled to 0, idle); the Service then selects slot=blue and
"shop" is deleted. Deployments that already carry a colour label (e.g. the
environment=blue|green of a hand-made setup) are adopted in place.

Examples:
  kubectl bg init shop --from deployment/shop
  kubectl bg init mon-app --from deployment/mon-app-blue --slot-label environment`,
    )
    .action(
      async (app: string, o: { from?: string; service?: string; slotLabel?: string; keepSource: boolean; dryRun: boolean; timeout: string }, cmd: Command) => {
        const flags: InitFlags = {
          from: o.from === undefined ? undefined : parseDeploymentRef(o.from),
          service: o.service,
          slotLabel: o.slotLabel,
          keepSource: !!o.keepSource,
          dryRun: !!o.dryRun,
          timeout: parseTimeout('--timeout', o.timeout),
        };
        const s = await openSession(ctx, cmd.optsWithGlobals<GlobalOptions>());
        try {
          done(await runInit(s, app, flags));
        } finally {
          s.cluster.close();
        }
      },
    );
}

// ---- running it ------------------------------------------------------------------

export async function runInit(s: Session, app: string, f: InitFlags): Promise<number> {
  const { cluster, namespace: ns } = s;
  const [deployments, services] = await Promise.all([cluster.listDeployments(ns), cluster.listServices(ns)]);
  let source: Deployment | undefined;
  if (f.from) {
    source = deployments.find((d) => d.metadata.name === f.from);
    const enrolled = deployments.some((d) => labelsOf(d)[APP_LABEL] === app) && services.some((x) => labelsOf(x)[APP_LABEL] === app);
    if (!source && !enrolled) throw new CliError(`deployment/${f.from} not found in namespace ${ns}`, EXIT.ERROR);
  }
  const plan = planInit({
    app,
    namespace: ns,
    source,
    deployments,
    services,
    service: f.service,
    slotLabel: f.slotLabel,
    keepSource: f.keepSource,
  });
  if (!plan.ok) {
    if (plan.problem === 'usage') throw usageError(plan.reason, plan.hint);
    throw new CliError(plan.reason, EXIT.ERROR, plan.hint);
  }
  const { live, names } = plan;
  const idle = otherColour(live);
  const summary = `${live} is live (${names[live]}), ${idle} is idle (${names[idle]}, ${plan.replicas[idle]} replicas), Service ${plan.service}, slot label ${plan.slotKey}`;
  if (plan.steps.length === 0) {
    s.out(`app ${app} is already enrolled in namespace ${ns}: ${summary}; nothing to do\n`);
    return EXIT.OK;
  }
  const dry = f.dryRun ? ' (dry run)' : '';
  s.out(`enrolling app ${app} in namespace ${ns} (slot label ${plan.slotKey})${dry}\n`);
  for (const step of plan.steps) {
    switch (step.kind) {
      case 'create':
        if (!f.dryRun) {
          try {
            await cluster.createDeployment(ns, step.body);
          } catch (e) {
            if (!isAlreadyExists(e)) throw wrap(e, `cannot create deployment.apps/${step.name}`);
          }
        }
        s.out(`deployment.apps/${step.name} created${dry} (${step.detail})\n`);
        break;
      case 'label':
        if (!f.dryRun)
          await cluster.patchDeployment(ns, step.name, step.patch, 'merge').catch((e) => Promise.reject(wrap(e, `cannot label deployment.apps/${step.name}`)));
        s.out(`deployment.apps/${step.name} labeled${dry} (${step.detail})\n`);
        break;
      case 'wait':
        if (f.dryRun) {
          s.out(`would wait for deployment.apps/${step.name} to be available at ${step.replicas} replicas\n`);
          break;
        }
        s.out(`waiting for deployment.apps/${step.name} to be available at ${step.replicas} replicas (timeout ${formatDuration(f.timeout)})\n`);
        try {
          await waitForDeployment(cluster, ns, step.name, step.replicas, { ctx: s.ctx, timeout: f.timeout, intervalMs: f.pollMs ?? 250 });
        } catch (e) {
          if (e instanceof CliError && e.code === EXIT.TIMEOUT)
            throw new CliError(
              e.message,
              EXIT.TIMEOUT,
              `the Service was not changed yet; run 'kubectl bg init ${app}${nsFlag(ns)}${f.from ? ` --from deployment/${f.from}` : ''}' again to finish`,
            );
          throw e;
        }
        s.out(`deployment.apps/${step.name} is available\n`);
        break;
      case 'service':
        if (!f.dryRun) {
          try {
            await cluster.patchService(ns, step.name, step.patch, 'merge');
          } catch (e) {
            if (isConflict(e))
              throw new CliError(`service/${step.name} changed while enrolling it; nothing was lost`, EXIT.ERROR, `run the same 'kubectl bg init' again`);
            throw wrap(e, `cannot enrol service/${step.name}`);
          }
        }
        s.out(`service/${step.name} patched${dry} (${step.detail})\n`);
        break;
      case 'delete':
        if (!f.dryRun) await cluster.deleteDeployment(ns, step.name).catch((e) => Promise.reject(wrap(e, `cannot delete deployment.apps/${step.name}`)));
        s.out(`deployment.apps/${step.name} deleted${dry} (${step.detail})\n`);
        break;
    }
  }
  if (f.dryRun) {
    s.out('nothing was changed\n');
    return EXIT.OK;
  }
  s.out(`enrolled app ${app}: ${summary}\n`);
  s.out(
    `Next: change it as usual, e.g. 'kubectl set image deployment/${names[live]}${nsFlag(ns)} ${plan.container}=IMAGE' (the change goes to ${names[idle]}), ` +
      `then 'kubectl bg status ${app}${nsFlag(ns)}' and 'kubectl bg switch ${app}${nsFlag(ns)}'\n`,
  );
  return EXIT.OK;
}

function wrap(e: unknown, what: string): unknown {
  if (isAdmissionDenial(e)) return refused(`${what}: ${(e as Error).message}`);
  return e;
}
