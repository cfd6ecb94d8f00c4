// kubectl bg switch APP [--to COLOUR] [--dry-run] [--wait] [--timeout D] [--force]
// (and the switching half of rollback). Plans with src/core/switch-plan.ts,
// then applies: 1) the target colour's live label and the active Service together
// (a merge patch with a resourceVersion precondition; on 409 re-read, re-plan,
// retry), 2) the previews, 3) the old colour's live label.
import { type Command, Option } from 'commander';
import { type AppView, resolveApp } from '../../../src/core/app.ts';
import { formatDuration } from '../../../src/core/duration.ts';
import { type Colour, LIVE_LABEL, SCALE_DOWN_AT_ANNOTATION } from '../../../src/core/labels.ts';
import { planSwitch, type SwitchRefusal } from '../../../src/core/switch-plan.ts';
import { requireApp } from '../app-objects.ts';
import { BREAK_GLASS_GROUP } from '../../../src/core/labels.ts';
import { isAdmissionDenial, isApiError, isConflict } from '../cluster.ts';
import { type Context, type GlobalOptions, nsFlag, openSession, type Session } from '../context.ts';
import { CliError, EXIT, refused, usageError } from '../exit-codes.ts';
import { parseColour, parseTimeout } from '../flags.ts';
import { beforeAfter, describePlan, paintColour } from '../render/switch.ts';
import { humanDuration } from '../render/time.ts';
import { waitForDeployment, waitForEndpoints } from '../wait.ts';

export interface SwitchFlags {
  kind: 'switch' | 'rollback';
  to?: Colour;
  dryRun: boolean;
  wait: boolean;
  /** Seconds, for --wait and for rollback's scale-up. */
  timeout: number;
  force: boolean;
  /** Poll interval of the waits (ms). */
  pollMs?: number;
}

/** --break-glass and --break-glass-group, for switch and rollback. */
export function addBreakGlassOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        '--break-glass',
        "while no kube-bluegreen webhook answers: act as yourself in the break-glass group, which the webhooks skip (the cluster policy still applies; needs the chart's ClusterRole <release>-break-glass bound to you)",
      ),
    )
    .addOption(
      new Option('--break-glass-group <group>', 'with --break-glass: the group to impersonate (the chart value breakGlass.group)').default(BREAK_GLASS_GROUP),
    );
}

/** The group to impersonate, or undefined without --break-glass. */
export function parseBreakGlass(o: { breakGlass?: boolean; breakGlassGroup?: string }, cmd: Command): string | undefined {
  const given = cmd.getOptionValueSource('breakGlassGroup') === 'cli';
  if (!o.breakGlass) {
    if (given) throw usageError('--break-glass-group goes with --break-glass');
    return undefined;
  }
  const g = (o.breakGlassGroup ?? '').trim();
  if (!g || /[\r\n]/.test(g))
    throw usageError(`--break-glass-group ${JSON.stringify(o.breakGlassGroup)}: give the group the webhooks skip (default ${BREAK_GLASS_GROUP})`);
  return g;
}

/** Runs a switch or rollback in a session, with the break-glass identity when asked for. */
export async function runSwitchCommand(ctx: Context, g: GlobalOptions, app: string, f: SwitchFlags, breakGlassGroup: string | undefined): Promise<number> {
  const s = await openSession(ctx, g, breakGlassGroup !== undefined ? { breakGlassGroup } : {});
  try {
    return await runSwitch(s, app, f);
  } catch (e) {
    // The API server refuses the impersonation itself before anything else: say which binding is missing.
    if (s.breakGlass && isApiError(e) && e.status === 403 && /impersonate/.test(e.message))
      throw new CliError(
        `break-glass: you may not act as ${s.breakGlass.user} in group ${s.breakGlass.group}: ${e.message}`,
        EXIT.ERROR,
        `an admin binds the ClusterRole <release>-break-glass to you, and impersonate on your own user name (README.md, Troubleshooting)`,
      );
    throw e;
  } finally {
    s.cluster.close();
  }
}

/** The loud part of --break-glass, before anything is read. */
function breakGlassWarning(s: Session, verb: string): string {
  const b = s.breakGlass!;
  return (
    `WARNING: BREAK-GLASS ${verb}: acting as ${b.user} in group ${b.group}, which every kube-bluegreen webhook skips.\n` +
    `WARNING:   still enforced: the cluster policy (slot labels; no pod-template change to the live colour) and RBAC.\n` +
    `WARNING:   NOT checked: the webhook's readiness gate on the switch; only this command's own check (none with --force).\n` +
    `WARNING:   recorded in the history as break-glass. Remove the break-glass binding once the webhook answers again.\n`
  );
}

/** How many times a switch re-reads and re-plans after the Service changed under it. */
export const CONFLICT_RETRIES = 3;

export function register(program: Command, ctx: Context, done: (code: number) => void): void {
  const command = program
    .command('switch')
    .description("Send the app's traffic to the idle colour (and the preview to the old one)")
    .argument('<app>', 'app name (label bluegreen.io/app)')
    .option('--to <colour>', 'colour to switch to (default: the idle one)')
    .option('--dry-run', 'print what would change and ask the API server (dryRun=All); change nothing')
    .option('--wait', "return once the Service's EndpointSlices hold only the new colour's ready pods")
    .option('--timeout <duration>', 'how long --wait waits', '5m')
    .option('--force', 'switch although the target colour is not fully rolled out and available');
  addBreakGlassOptions(command)
    .addHelpText(
      'after',
      `
Examples:
  kubectl bg switch shop                # to the idle colour, once it is ready
  kubectl bg switch shop --wait         # and wait for the endpoints to follow
  kubectl bg switch shop --dry-run      # show the change, and whether the webhook would admit it
  kubectl bg switch shop --to blue --force
  kubectl bg switch shop --break-glass  # the webhook is down (see README.md, Troubleshooting)`,
    )
    .action(
      async (
        app: string,
        o: { to?: string; dryRun: boolean; wait: boolean; timeout: string; force: boolean; breakGlass?: boolean; breakGlassGroup?: string },
        cmd: Command,
      ) => {
        const flags: SwitchFlags = {
          kind: 'switch',
          to: parseColour('--to', o.to),
          dryRun: !!o.dryRun,
          wait: !!o.wait,
          timeout: parseTimeout('--timeout', o.timeout),
          force: !!o.force,
        };
        done(await runSwitchCommand(ctx, cmd.optsWithGlobals<GlobalOptions>(), app, flags, parseBreakGlass(o, cmd)));
      },
    );
}

function refusal(r: SwitchRefusal): CliError {
  return refused(r.reason, r.hint);
}

async function readView(s: Session, app: string): Promise<AppView> {
  // By name (fresh objects without a LIST's wait): the Service write is guarded by its resourceVersion, and the webhook checks the switch on its own fresh read.
  return resolveApp(await requireApp(s.cluster, s.namespace, app, { byName: true }));
}

/** switch and rollback. Returns the exit code; throws CliError for refusals and errors. */
export async function runSwitch(s: Session, app: string, f: SwitchFlags): Promise<number> {
  const { cluster, namespace: ns, paint: p } = s;
  const poll = { ctx: s.ctx, timeout: f.timeout, intervalMs: f.pollMs ?? 100 };
  const verb = f.kind;
  const breakGlass = !!s.breakGlass;
  if (breakGlass) s.err(breakGlassWarning(s, verb));
  // The app and who we are, at once: each is a round trip, and a switch is timed from the keystroke.
  const [first, by] = await Promise.all([readView(s, app), f.dryRun ? undefined : cluster.whoAmI()]);
  let view = first;
  let plan = planSwitch(view, { kind: f.kind, to: f.to, force: f.force, now: s.ctx.now(), by, breakGlass });

  if (!plan.ok && plan.code === 'scaled-down' && plan.scaleUp && f.kind === 'rollback') {
    const { deployment, replicas } = plan.scaleUp;
    if (f.dryRun) {
      s.out(
        `rollback ${app} in namespace ${ns} (dry run): ${deployment} is scaled down; would scale it to ${replicas} replicas, ` +
          `wait until it is available, then switch back. Nothing was changed.\n`,
      );
      return EXIT.OK;
    }
    await scaleUp(s, view, deployment, replicas);
    s.out(`waiting for ${deployment} to be available at ${replicas} replicas (timeout ${formatDuration(f.timeout)})\n`);
    await waitForDeployment(cluster, ns, deployment, replicas, { ...poll, intervalMs: f.pollMs ?? 250 });
    s.out(`${deployment} is available\n`);
    view = await readView(s, app);
    plan = planSwitch(view, { kind: f.kind, to: f.to, force: f.force, now: s.ctx.now(), by, breakGlass });
  }
  if (!plan.ok && (plan.code === 'pending' || plan.code === 'checking') && breakGlass)
    // What would land it (or run the check) is the webhook's reconciler, which is down with the webhook: do not wait.
    throw refused(
      `${plan.reason}; the webhook's reconciler, which ${plan.code === 'pending' ? 'applies it' : 'runs the check'}, is not running (break-glass)`,
      `'kubectl bg ${verb} ${app}${nsFlag(ns)} --break-glass --force' ${verb === 'rollback' ? 'rolls back' : 'switches'} to ${f.to ?? 'that colour'} as it runs now`,
    );
  if (!plan.ok && (plan.code === 'pending' || plan.code === 'checking') && f.wait && !f.dryRun) {
    // A redirected change has not reached the target yet: wait for it to land and roll out.
    const what =
      plan.code === 'checking'
        ? `the pre-switch check of ${f.to ?? 'the idle colour'} to pass`
        : `the change recorded for ${f.to ?? 'the idle colour'} to land and roll out`;
    s.out(`waiting for ${what} (timeout ${formatDuration(f.timeout)}): ${plan.reason}\n`);
    const deadline = s.ctx.now().getTime() + f.timeout * 1000;
    while (!plan.ok && (plan.code === 'pending' || plan.code === 'checking' || plan.code === 'not-ready')) {
      if (s.ctx.now().getTime() >= deadline)
        throw new CliError(`timed out after ${formatDuration(f.timeout)}: ${plan.reason}`, EXIT.TIMEOUT, `kubectl bg status ${app}${nsFlag(ns)}`);
      await s.ctx.sleep(f.pollMs ?? 250);
      view = await readView(s, app);
      plan = planSwitch(view, { kind: f.kind, to: f.to, force: f.force, now: s.ctx.now(), by, breakGlass });
    }
  }
  if (!plan.ok) throw refusal(plan);
  const to = plan.to;

  s.out(`${verb} ${app} in namespace ${ns}: ${paintColour(p, plan.from)} -> ${paintColour(p, plan.to)}${f.dryRun ? ' (dry run)' : ''}\n`);
  for (const w of plan.warnings) s.err(`warning: ${w}\n`);
  s.out(describePlan(view, plan, p, s.ctx.now()));

  if (f.dryRun) {
    try {
      for (const l of plan.liveLabels) await cluster.patchDeployment(ns, l.name, l.patch, 'merge', { dryRun: true });
      await cluster.patchService(ns, plan.activeService.name, plan.activeService.patch, 'merge', { dryRun: true });
      for (const pv of plan.previews) await cluster.patchService(ns, pv.name, pv.patch, 'merge', { dryRun: true });
    } catch (e) {
      if (isAdmissionDenial(e)) throw refused(`server dry run: the API server refuses this ${verb}: ${e.message}`, `kubectl bg status ${app}${nsFlag(ns)}`);
      throw e;
    }
    s.out(
      breakGlass
        ? `server dry run: accepted by the API server and the cluster policy (the webhooks skip the break-glass group); nothing was changed\n`
        : `server dry run: accepted by the API server and its admission webhooks; nothing was changed\n`,
    );
    return EXIT.OK;
  }

  // Apply, re-planning on a conflict (the Service changed since it was read).
  // The target's live label as it was before we touched it, to put back on failure.
  const targetLabel = view.deployments[plan.to]?.metadata.labels?.[LIVE_LABEL] ?? null;
  let labelMissed: string | undefined;
  for (let attempt = 0; ; attempt++) {
    const first = plan.liveLabels[0];
    const undoLabel = async () => {
      if (first && targetLabel !== 'true')
        await cluster.patchDeployment(ns, first.name, { metadata: { labels: { [LIVE_LABEL]: targetLabel } } }, 'merge').catch(() => undefined);
    };
    try {
      // The target's live label and the Service together: one round trip less before traffic
      // moves (the webhook's reconciler keeps the labels equal to the Service whatever happens).
      const [label, service] = await Promise.allSettled([
        first ? cluster.patchDeployment(ns, first.name, first.patch, 'merge') : Promise.resolve(undefined),
        cluster.patchService(ns, plan.activeService.name, plan.activeService.patch, 'merge'),
      ]);
      if (service.status === 'rejected') throw service.reason;
      // Switched; the label follows from the webhook's reconciler if this write did not land.
      if (label.status === 'rejected') {
        if (breakGlass) labelMissed = first?.name;
        s.err(
          breakGlass
            ? `error: could not label ${first?.name} ${LIVE_LABEL}=true (${(label.reason as Error).message}); the webhook's reconciler, which would, is down, and the cluster policy protects the colour labelled live\n`
            : `warning: could not label ${first?.name} ${LIVE_LABEL}=true (${(label.reason as Error).message}); the webhook's reconciler sets it\n`,
        );
      }
      break;
    } catch (e) {
      if (isConflict(e) && attempt < CONFLICT_RETRIES) {
        s.err(`Service ${plan.activeService.name} changed since it was read; reading it again (retry ${attempt + 1} of ${CONFLICT_RETRIES})\n`);
        view = await readView(s, app);
        const again = planSwitch(view, { kind: f.kind, to, force: f.force, now: s.ctx.now(), by, breakGlass });
        if (!again.ok) {
          if (again.code !== 'already-live') await undoLabel();
          throw refusal(again);
        }
        plan = again;
        continue;
      }
      await undoLabel();
      if (isConflict(e))
        throw new CliError(
          `Service ${plan.activeService.name} kept changing while switching (${CONFLICT_RETRIES + 1} attempts); nothing was switched`,
          EXIT.ERROR,
          `kubectl bg ${verb} ${app}${nsFlag(ns)}`,
        );
      if (isAdmissionDenial(e)) throw refused(`the API server refused to switch Service ${plan.activeService.name}: ${(e as Error).message}`);
      throw e;
    }
  }
  for (const pv of plan.previews) await cluster.patchService(ns, pv.name, pv.patch, 'merge');
  for (const l of plan.liveLabels.slice(1)) await cluster.patchDeployment(ns, l.name, l.patch, 'merge');

  s.out(beforeAfter(view, plan, p));
  const warm = Date.parse(plan.scaleDownAt) - s.ctx.now().getTime();
  s.out(
    `${verb === 'rollback' ? 'rolled back' : 'switched'} ${app} to ${paintColour(p, plan.to)}; ` +
      `${plan.from} stays warm for ${humanDuration(warm)} (until ${plan.scaleDownAt}), then is scaled down. ` +
      (verb === 'rollback' ? `Switch again with 'kubectl bg switch ${app}${nsFlag(ns)}'\n` : `Roll back with 'kubectl bg rollback ${app}${nsFlag(ns)}'\n`),
  );

  if (breakGlass)
    s.err(
      `WARNING: BREAK-GLASS: ${verb} recorded as break-glass by ${s.breakGlass!.user}. The webhook's reconciler scales ${plan.from} down ` +
        `once it runs again and the warm period is over; until then nothing redirects changes to the live colour (the policy refuses them).\n`,
    );
  if (labelMissed)
    throw new CliError(
      `traffic moved to ${plan.to}, but Deployment ${labelMissed} is not labelled ${LIVE_LABEL}=true, so the cluster policy does not protect its template yet`,
      EXIT.ERROR,
      `kubectl label deployment ${labelMissed}${nsFlag(ns)} ${LIVE_LABEL}=true --overwrite --as=${s.breakGlass!.user} --as-group=${s.breakGlass!.group} --as-group=system:authenticated`,
    );

  if (f.wait) {
    const target = view.deployments[plan.to]!;
    s.out(`waiting for the EndpointSlices of Service ${plan.activeService.name} to hold only ${plan.to} pods (timeout ${formatDuration(f.timeout)})\n`);
    const r = await waitForEndpoints(cluster, ns, plan.activeService.name, target, poll);
    s.out(
      `Service ${plan.activeService.name} sends traffic only to ${plan.to}: ${r.endpoints} ready endpoint${r.endpoints === 1 ? '' : 's'} of ${target.metadata.name} (${formatDuration(r.elapsedMs / 1000)})\n`,
    );
  }
  return EXIT.OK;
}

/** Rollback's first step when the previous colour was scaled down: keep it from being scaled down again, then scale it up. */
async function scaleUp(s: Session, view: AppView, deployment: string, replicas: number): Promise<void> {
  const svc = view.active;
  if (svc?.metadata.name && svc.metadata.annotations?.[SCALE_DOWN_AT_ANNOTATION] !== undefined)
    await s.cluster.patchService(
      s.namespace,
      svc.metadata.name,
      { metadata: { resourceVersion: svc.metadata.resourceVersion, annotations: { [SCALE_DOWN_AT_ANNOTATION]: null } } },
      'merge',
    );
  await s.cluster.patchDeployment(s.namespace, deployment, { spec: { replicas } }, 'merge');
  s.out(`scaled ${deployment} up to ${replicas} replicas (it was scaled down after the last switch)\n`);
}
