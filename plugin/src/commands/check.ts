// kubectl bg check APP [--wait] [--rerun] [--timeout 10m] [-o json|yaml]: where the app's release
// gates stand (README "Release gates"). The webhook's reconciler runs the checks; this command
// shows them, waits for them, and asks for a new run of a pre-switch check.
import type { Command } from 'commander';
import YAML from 'yaml';
import { type AppView, resolveApp } from '../../../src/core/app.ts';
import {
  CHECK_RESULT_ANNOTATION,
  CHECK_TEMPLATE_ANNOTATION,
  type CheckView,
  checkTemplateOf,
  checkViews,
  readCheckUnverified,
  rerunCheckPatch,
} from '../../../src/core/checks.ts';
import { requireApp } from '../app-objects.ts';
import { isStatus } from '../cluster.ts';
import { type Context, type GlobalOptions, nsFlag, openSession, type Session } from '../context.ts';
import { CliError, EXIT, refused } from '../exit-codes.ts';
import { type OutputFormat, parseOutput, parseTimeout } from '../flags.ts';
import { CHECK_TITLE, describeCheck } from '../render/status.ts';
import { poll } from '../wait.ts';

export interface CheckFlags {
  wait: boolean;
  rerun: boolean;
  /** Seconds, with --wait. */
  timeout: number;
  output: OutputFormat;
  pollMs?: number;
}

export interface CheckDocument {
  app: string;
  namespace: string;
  checks: CheckView[];
}

export function register(program: Command, ctx: Context, done: (code: number) => void): void {
  program
    .command('check')
    .description("Show the app's release checks (the idle colour's pre-switch check, the live colour's post-switch check); wait for them, or run one again")
    .argument('<app>', 'app name (label bluegreen.io/app)')
    .option('--wait', 'wait until the checks shown have passed or failed')
    .option('--rerun', "run the idle colour's pre-switch check again (its last result is removed; the webhook's reconciler starts a new Job)")
    .option('--timeout <duration>', 'how long --wait waits', '10m')
    .option('-o, --output <format>', 'json | yaml')
    .addHelpText(
      'after',
      `
Exit status: 0 when every check shown has passed (or none is needed now), 2 when one failed or
has not passed yet (without --wait), 3 when --wait ran out.
The checks are declared on the active Service: ${CHECK_TEMPLATE_ANNOTATION.pre}=<CronJob> and
${CHECK_TEMPLATE_ANNOTATION.post}=<CronJob> (see README "Release gates").`,
    )
    .action(async (app: string, o: { wait?: boolean; rerun?: boolean; timeout: string; output?: string }, cmd: Command) => {
      const flags: CheckFlags = {
        wait: !!o.wait,
        rerun: !!o.rerun,
        timeout: parseTimeout('--timeout', o.timeout),
        output: parseOutput(o.output, ['json', 'yaml']),
      };
      const s = await openSession(ctx, cmd.optsWithGlobals<GlobalOptions>());
      try {
        done(await runCheck(s, app, flags));
      } finally {
        s.cluster.close();
      }
    });
}

async function readView(s: Session, app: string): Promise<AppView> {
  return resolveApp(await requireApp(s.cluster, s.namespace, app, { byName: true }));
}

const settled = (c: CheckView) => c.state === 'passed' || c.state === 'failed';

export async function runCheck(s: Session, app: string, f: CheckFlags): Promise<number> {
  const ns = nsFlag(s.namespace);
  let view = await readView(s, app);
  if (!view.active) throw new CliError(view.problems[0] ?? `app ${app} has no active Service`, EXIT.ERROR, `kubectl bg status ${app}${ns}`);
  if (!checkTemplateOf(view, 'pre') && !checkTemplateOf(view, 'post'))
    throw refused(
      `app ${app} declares no release checks`,
      `name a CronJob (suspend: true) whose jobTemplate is the check: 'kubectl annotate service ${view.active.metadata.name}${ns} ${CHECK_TEMPLATE_ANNOTATION.pre}=<cronjob>'`,
    );
  if (f.rerun) view = await rerun(s, app, view);

  let checks = checkViews(view, readCheckUnverified);
  const text = (cs: CheckView[]) =>
    cs.length === 0
      ? `app ${app}: no check is needed now (the idle colour runs the live version, or the one live before the last switch)\n`
      : cs.map((c) => `${CHECK_TITLE[c.phase]}: ${describeCheck(c, s.ctx.now(), s.paint)}\n`).join('');
  const structured = f.output === 'json' || f.output === 'yaml';
  let shown = '';
  const show = (cs: CheckView[]) => {
    if (structured) return;
    // Only what changed (the time in "started 3s ago" aside): one line per state.
    const key = cs.map((c) => `${c.phase}/${c.version}/${c.state}/${c.job}`).join(' ');
    if (key !== shown) s.out(text(cs));
    shown = key;
  };
  show(checks);
  if (f.wait && !checks.every(settled))
    checks = await poll(
      { ctx: s.ctx, timeout: f.timeout, intervalMs: f.pollMs ?? 1000 },
      `the checks of ${app}`,
      async () => {
        const now = checkViews(await readView(s, app), readCheckUnverified);
        show(now);
        const open = now.filter((c) => !settled(c));
        return open.length ? { done: false, state: open.map((c) => `${c.phase}-switch ${c.state}`).join(', ') } : { done: true, value: now };
      },
      `kubectl bg check ${app}${ns}`,
    );
  const doc: CheckDocument = { app, namespace: s.namespace, checks };
  if (f.output === 'json') s.out(`${JSON.stringify(doc, null, 2)}\n`);
  else if (f.output === 'yaml') s.out(YAML.stringify(doc));
  const failed = checks.find((c) => c.state === 'failed');
  if (failed)
    throw refused(
      `the ${failed.phase}-switch check of ${failed.deployment} (version ${failed.version.slice(0, 8)}) failed${failed.reason ? `: ${failed.reason}` : ''}`,
      failed.phase === 'pre'
        ? `fix the version and roll it out again, or run the check again with 'kubectl bg check ${app}${ns} --rerun --wait'; 'kubectl bg switch ${app}${ns} --force' overrides (recorded in the history)`
        : `'kubectl bg history ${app}${ns}' shows what the reconciler did about it`,
    );
  const open = checks.find((c) => !settled(c));
  if (open)
    throw refused(
      `the ${open.phase}-switch check of ${open.deployment} (version ${open.version.slice(0, 8)}) has not passed yet (${open.state})`,
      `kubectl bg check ${app}${ns} --wait`,
    );
  return EXIT.OK;
}

/** Removes the idle colour's last pre-switch result (guarded by its value), so that the reconciler runs the check again. */
async function rerun(s: Session, app: string, view: AppView): Promise<AppView> {
  const ns = nsFlag(s.namespace);
  for (let attempt = 0; ; attempt++) {
    const pre = checkViews(view, readCheckUnverified).find((c) => c.phase === 'pre');
    if (!pre)
      throw refused(
        `app ${app} has no pre-switch check to run again: ${view.idle ? `${view.idle} runs the live version, or the one live before the last switch` : 'it has no idle colour'}`,
        `kubectl bg status ${app}${ns}`,
      );
    if (pre.state === 'running') throw refused(`the pre-switch check of ${pre.deployment} is running (Job ${pre.job})`, `kubectl bg check ${app}${ns} --wait`);
    const d = view.deployments[pre.colour]!;
    const patch = rerunCheckPatch(d, 'pre');
    if (!patch) {
      s.err(`${pre.deployment} has no check result yet: the webhook's reconciler starts the check once it is rolled out and available\n`);
      return view;
    }
    try {
      await s.cluster.patchDeployment(s.namespace, pre.deployment, patch, 'json');
    } catch (e) {
      // Someone (the reconciler) wrote a newer result in between: look again.
      if (isStatus(e, 409, 422) && attempt < 3) {
        view = await readView(s, app);
        continue;
      }
      throw e;
    }
    const last = pre.previous ?? (pre.job ? { state: pre.state, job: pre.job } : undefined);
    s.err(
      `removed ${CHECK_RESULT_ANNOTATION.pre} from ${pre.deployment}${last ? ` (Job ${last.job}, ${last.state})` : ''}; the webhook's reconciler runs the check again for version ${pre.version.slice(0, 8)}\n`,
    );
    return readView(s, app);
  }
}
