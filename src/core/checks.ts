// Release gates (README "Release gates"): checks an app declares, run as Jobs from a template the
// app names, for one exact version of a colour. Pre-switch: the idle colour's version must have
// passed before any switch to it (the webhook's gate on the active Service, kubectl bg switch,
// a raw patch and a Git switch alike). Post-switch: run on the new live colour while the old one
// is warm; a failure rolls back at once. Decided here; the webhook's reconciler starts the Jobs
// and records their results, sealed, on the Deployment they checked.
import type { AppView } from './app.ts';
import { readyToServe } from './availability.ts';
import { nsFlag } from './commands.ts';
import { appendHistory, historyOf, holdsPreviousVersion, lastSwitchOf, switchRecord } from './history.ts';
import type { Deployment, ObjectMeta, PodTemplateSpec, Service } from './k8s-types.ts';
import { annotationsOf, isRecord } from './k8s-types.ts';
import { APP_LABEL, type Colour, HISTORY_ANNOTATION, isColour, SCALE_DOWN_AT_ANNOTATION } from './labels.ts';
import type { RecordSeal } from './pending-change.ts';
import { annotationPath } from './pending-change.ts';
import type { JsonOp } from './reconcile.ts';
import { templateHash } from './template.ts';

export type CheckPhase = 'pre' | 'post';

/** Annotations on the active Service naming the check's template: a CronJob (keep it `suspend: true`) whose jobTemplate is the check. */
export const CHECK_TEMPLATE_ANNOTATION: Record<CheckPhase, string> = {
  pre: 'bluegreen.io/pre-switch-check',
  post: 'bluegreen.io/post-switch-check',
};
/** Annotations on a Deployment: the sealed record of the last check of that phase (written by the reconciler only). */
export const CHECK_RESULT_ANNOTATION: Record<CheckPhase, string> = {
  pre: 'bluegreen.io/pre-switch-check-result',
  post: 'bluegreen.io/post-switch-check-result',
};
/** Labels on a check's Job (and its pods). */
export const CHECK_PHASE_LABEL = 'bluegreen.io/check';
export const CHECK_VERSION_LABEL = 'bluegreen.io/check-version';
export const CHECK_COLOUR_LABEL = 'bluegreen.io/check-colour';
/** How long a check may run before it counts as failed (a Job's own activeDeadlineSeconds may be shorter). */
export const CHECK_TIMEOUT_MS = 15 * 60_000;

export type CheckState = 'running' | 'passed' | 'failed';

export interface CheckRecord {
  kind: 'check';
  phase: CheckPhase;
  /** uid of the Deployment checked, its colour, and its version (templateHash) when the check started. */
  deployment: string;
  colour: Colour;
  version: string;
  /** The CronJob the Job was made from, and the Job. */
  template: string;
  job: string;
  state: CheckState;
  startedAt: string;
  finishedAt?: string;
  reason?: string;
}

/** A Job's outcome as the reconciler reads it: null when the Job does not exist. */
export interface JobOutcome {
  uid?: string;
  state: 'running' | 'succeeded' | 'failed';
  reason?: string;
}

export function checkTemplateOf(view: AppView, phase: CheckPhase): string | undefined {
  return annotationsOf(view.active)[CHECK_TEMPLATE_ANNOTATION[phase]] || undefined;
}

function asCheck(o: Record<string, unknown> | undefined, phase: CheckPhase): CheckRecord | undefined {
  if (!o || o.kind !== 'check' || o.phase !== phase || !isColour(o.colour)) return undefined;
  for (const k of ['deployment', 'version', 'template', 'job', 'state', 'startedAt'] as const) if (typeof o[k] !== 'string') return undefined;
  if (o.state !== 'running' && o.state !== 'passed' && o.state !== 'failed') return undefined;
  return o as unknown as CheckRecord;
}

/** The check record on `d`, verified with the seal, and bound to that very Deployment. */
export function readCheck(d: Deployment | undefined, phase: CheckPhase, seal: RecordSeal): CheckRecord | undefined {
  const v = annotationsOf(d)[CHECK_RESULT_ANNOTATION[phase]];
  const r = v === undefined ? undefined : asCheck(seal.openObject(v), phase);
  return r && r.deployment === (d?.metadata.uid ?? '') ? r : undefined;
}

/** The same without the seal, for those who cannot check it (kubectl bg): to show, never to act on. */
export function readCheckUnverified(d: Deployment | undefined, phase: CheckPhase): CheckRecord | undefined {
  const v = annotationsOf(d)[CHECK_RESULT_ANNOTATION[phase]];
  if (v === undefined) return undefined;
  try {
    const raw: unknown = JSON.parse(v);
    return isRecord(raw) ? asCheck(raw, phase) : undefined;
  } catch {
    return undefined;
  }
}

/** How a check record is read: verified against the seal (the webhook), or not (kubectl bg, to say why early). */
export type CheckReader = (d: Deployment | undefined, phase: CheckPhase) => CheckRecord | undefined;
type Reader = CheckReader;

/**
 * Why a switch to `to` must wait for the pre-switch check, or undefined. One rule for the webhook
 * (verified records) and kubectl bg (unverified, to say why early). A colour that holds the version
 * live before the last switch needs none: a rollback goes back to what served traffic. The state
 * says whether waiting can help ('waiting') or the version failed ('failed'); switch-readiness.ts
 * composes it with the rest of the switch rule.
 */
export function preSwitchCheckGate(view: AppView, to: Colour, read: Reader): { reason: string; state: 'waiting' | 'failed' } | undefined {
  const template = checkTemplateOf(view, 'pre');
  const target = view.deployments[to];
  if (!template || !target || holdsPreviousVersion(view, to)) return undefined;
  const version = templateHash(target.spec?.template, view.slotKey);
  const r = read(target, 'pre');
  const name = target.metadata.name;
  const what = `version ${version} of ${name} has not passed its pre-switch check (CronJob ${template})`;
  const check = `'kubectl bg check ${view.app}${nsFlag(view.namespace)} --wait'`;
  if (!r || r.version !== version) return { state: 'waiting', reason: `${what}: it starts once ${name} is rolled out and available; wait with ${check}` };
  if (r.state === 'running') return { state: 'waiting', reason: `${what}: Job ${r.job} is running since ${r.startedAt}; wait with ${check}` };
  if (r.state === 'failed')
    return {
      state: 'failed',
      reason: `${what}: Job ${r.job} failed${r.reason ? ` (${r.reason})` : ''}; fix the version and roll it out again, or run the check again with 'kubectl bg check ${view.app}${nsFlag(view.namespace)} --rerun'`,
    };
  return undefined;
}

/** Where a check stands, for `kubectl bg check` and `status` (read without the seal: to show, never to act on). */
export interface CheckView {
  phase: CheckPhase;
  /** The CronJob named by the app. */
  template: string;
  colour: Colour;
  deployment: string;
  /** The colour's current version (templateHash): the one a result must name to count. */
  version: string;
  /** 'waiting': no check of this version yet (it starts once the colour is rolled out and available). */
  state: 'waiting' | CheckState;
  job: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  reason: string | null;
  /** The last check of an older version, when the current one has none yet. */
  previous: { version: string; state: CheckState; job: string } | null;
}

/**
 * The checks that matter now: the pre-switch check of the idle colour's version (none when that
 * colour runs the live version, or the version live before the last switch: a rollback needs none)
 * and the post-switch check of the live colour's version (after a switch to it).
 */
export function checkViews(view: AppView, read: Reader): CheckView[] {
  const out: CheckView[] = [];
  if (!view.live || !view.idle) return out;
  const live = view.deployments[view.live];
  const liveVersion = templateHash(live?.spec?.template, view.slotKey);
  const last = lastSwitchOf(view.active);
  const wanted: { phase: CheckPhase; colour: Colour }[] = [
    { phase: 'pre', colour: view.idle },
    { phase: 'post', colour: view.live },
  ];
  for (const { phase, colour } of wanted) {
    const template = checkTemplateOf(view, phase);
    const d = view.deployments[colour];
    if (!template || !d) continue;
    const version = templateHash(d.spec?.template, view.slotKey);
    const r = read(d, phase);
    if (phase === 'pre' && (version === liveVersion || holdsPreviousVersion(view, colour))) continue;
    if (phase === 'post' && r?.version !== version && (last?.to !== colour || last.toTemplate !== version)) continue;
    const current = r?.version === version ? r : undefined;
    out.push({
      phase,
      template,
      colour,
      deployment: d.metadata.name ?? '',
      version,
      state: current?.state ?? 'waiting',
      job: current?.job ?? null,
      startedAt: current?.startedAt ?? null,
      finishedAt: current?.finishedAt ?? null,
      reason: current?.reason ?? null,
      previous: r && !current ? { version: r.version, state: r.state, job: r.job } : null,
    });
  }
  return out;
}

/**
 * `kubectl bg check --rerun`: the JSON patch that removes the result of the last check of `phase`
 * on `d` (guarded by its value), so that the reconciler runs the check again for the version the
 * colour runs now. Undefined when there is nothing to remove.
 */
export function rerunCheckPatch(d: Deployment, phase: CheckPhase): JsonOp[] | undefined {
  const key = CHECK_RESULT_ANNOTATION[phase];
  const current = annotationsOf(d)[key];
  if (current === undefined) return undefined;
  return [
    { op: 'test', path: annotationPath(key), value: current },
    { op: 'remove', path: annotationPath(key) },
  ];
}

export type CheckAction =
  /** Record the check as running on `deployment` (then create the Job, in that order: a Job never runs unrecorded). */
  | { kind: 'start-check'; phase: CheckPhase; deployment: string; colour: Colour; template: string; job: string; ops: JsonOp[]; record: CheckRecord }
  /** The Job ended (or vanished, or ran too long): record the result. */
  | { kind: 'finish-check'; phase: CheckPhase; deployment: string; ops: JsonOp[]; record: CheckRecord }
  /** A post-switch check failed while the old colour is warm: back to it, with the reason in the history. */
  | {
      kind: 'check-rollback';
      service: string;
      servicePatch: Record<string, unknown>;
      from: Colour;
      to: Colour;
      reason: string;
      record: CheckRecord;
      deployment: string;
      ops: JsonOp[];
    };

export interface CheckPlanInput {
  view: AppView;
  seal: RecordSeal;
  now: Date;
  /** Outcome of each Job a running record names (by Job name); null when it does not exist. */
  jobs: ReadonlyMap<string, JobOutcome | null>;
  /** A short random suffix for Job names (injected: the plan stays pure). */
  suffix: string;
}

export interface CheckPlan {
  action?: CheckAction;
  /** Look again after this long (a Job running). */
  recheckMs?: number;
  /** Jobs to read before planning again (named by running records). */
  needJobs: string[];
}

function recordOps(d: Deployment, phase: CheckPhase, value: string): JsonOp[] {
  const key = CHECK_RESULT_ANNOTATION[phase];
  const current = annotationsOf(d)[key];
  const ops: JsonOp[] = [];
  if (!d.metadata.annotations) ops.push({ op: 'add', path: '/metadata/annotations', value: {} });
  // Guarded by what was read: a second writer (an old leader) never overwrites a newer record.
  if (current !== undefined) ops.push({ op: 'test', path: annotationPath(key), value: current });
  ops.push({ op: 'add', path: annotationPath(key), value });
  return ops;
}

function jobName(d: Deployment, phase: CheckPhase, version: string, suffix: string): string {
  return `${(d.metadata.name ?? 'app').slice(0, 40)}-${phase}-${version.slice(0, 8)}-${suffix}`.replace(/-+/g, '-');
}

export function planChecks(input: CheckPlanInput): CheckPlan {
  const { view, seal, now } = input;
  const needJobs: string[] = [];
  if (!view.active || !view.live || !view.idle || view.duplicates.length) return { needJobs };
  const plans: { phase: CheckPhase; colour: Colour }[] = [
    { phase: 'post', colour: view.live },
    { phase: 'pre', colour: view.idle },
  ];
  let recheckMs: number | undefined;
  for (const { phase, colour } of plans) {
    const template = checkTemplateOf(view, phase);
    const d = view.deployments[colour];
    if (!template || !d?.metadata.name) continue;
    const version = templateHash(d.spec?.template, view.slotKey);
    const r = readCheck(d, phase, seal);
    // 1. A check running: finish it when its Job ends, vanishes, or runs too long.
    if (r?.state === 'running') {
      if (!input.jobs.has(r.job)) {
        needJobs.push(r.job);
        continue;
      }
      const job = input.jobs.get(r.job) ?? null;
      const ranTooLong = now.getTime() - Date.parse(r.startedAt) > CHECK_TIMEOUT_MS;
      if (job?.state === 'running' && !ranTooLong) {
        recheckMs = Math.min(recheckMs ?? Infinity, 2000);
        continue;
      }
      const passed = job?.state === 'succeeded';
      const reason = !job
        ? `Job ${r.job} does not exist (deleted, or it could not be created)`
        : job.state === 'running'
          ? `Job ${r.job} ran longer than ${CHECK_TIMEOUT_MS / 60_000} minutes`
          : job.state === 'failed'
            ? (job.reason ?? `Job ${r.job} failed`)
            : undefined;
      const done: CheckRecord = { ...r, state: passed ? 'passed' : 'failed', finishedAt: now.toISOString(), ...(reason ? { reason } : {}) };
      const ops = recordOps(d, phase, seal.sealObject({ ...done }));
      // A post-switch check that failed for the version live now, with the old colour still warm: roll back.
      if (phase === 'post' && !passed && r.version === version) {
        const back = rollbackFor(view, reason ?? 'failed', now, seal);
        if (back) return { action: { ...back, record: done, deployment: d.metadata.name, ops }, needJobs };
      }
      return { action: { kind: 'finish-check', phase, deployment: d.metadata.name, ops, record: done }, needJobs };
    }
    // 2. A version with no check yet: start one.
    if (r && r.version === version) continue;
    if (phase === 'pre') {
      // Once the idle colour runs a new version, rolled out and available at the live count.
      if (holdsPreviousVersion(view, colour)) continue;
      const live = view.deployments[view.live];
      if (version === templateHash(live?.spec?.template, view.slotKey)) continue;
      if ((d.spec?.replicas ?? 1) === 0 || !readyToServe(d, live?.spec?.replicas ?? 1).ok) continue;
    } else {
      // Right after a switch to this very version.
      const last = lastSwitchOf(view.active);
      if (!last || last.to !== colour || last.toTemplate !== version) continue;
    }
    const job = jobName(d, phase, version, input.suffix);
    const record: CheckRecord = {
      kind: 'check',
      phase,
      deployment: d.metadata.uid ?? '',
      colour,
      version,
      template,
      job,
      state: 'running',
      startedAt: now.toISOString(),
    };
    return {
      action: {
        kind: 'start-check',
        phase,
        deployment: d.metadata.name,
        colour,
        template,
        job,
        ops: recordOps(d, phase, seal.sealObject({ ...record })),
        record,
      },
      needJobs,
    };
  }
  return { needJobs, ...(recheckMs !== undefined ? { recheckMs } : {}) };
}

function rollbackFor(
  view: AppView,
  reason: string,
  now: Date,
  seal: RecordSeal,
): Omit<Extract<CheckAction, { kind: 'check-rollback' }>, 'record' | 'deployment' | 'ops'> | undefined {
  const svc = view.active!;
  const from = view.live!;
  const to = view.idle!;
  const old = view.deployments[to];
  if (!old || !holdsPreviousVersion(view, to) || !readyToServe(old, view.deployments[from]?.spec?.replicas ?? 1).ok) return undefined;
  // Never back onto a version whose own post-switch check failed (after a rollback whose check
  // fails too, say the check itself is broken): that would switch back and forth for ever.
  const there = readCheck(old, 'post', seal);
  if (there?.state === 'failed' && there.version === templateHash(old.spec?.template, view.slotKey)) return undefined;
  const records = historyOf(svc).records;
  const why = `post-switch check failed: ${reason}`;
  const rec = switchRecord(view, 'rollback', from, to, now, { by: 'kube-bluegreen', reason: why });
  const history = appendHistory(records, rec);
  return {
    kind: 'check-rollback',
    service: svc.metadata.name ?? '',
    servicePatch: {
      metadata: { resourceVersion: svc.metadata.resourceVersion, annotations: { [HISTORY_ANNOTATION]: history, [SCALE_DOWN_AT_ANNOTATION]: null } },
      spec: { selector: { [view.slotKey]: to } },
    },
    from,
    to,
    reason: why,
  };
}

/**
 * The Job of a check: the CronJob's jobTemplate, labelled for the app, with the colour, the version
 * and the URL to test in its containers' environment (BLUEGREEN_URL: the preview Service for a
 * pre-switch check, the active one after the switch).
 */
/** What a check's template (a CronJob) holds that its Job is made from. */
export interface CronJobTemplate {
  metadata: ObjectMeta;
  spec?: { jobTemplate?: { metadata?: ObjectMeta; spec?: { template?: PodTemplateSpec; [k: string]: unknown } } };
}

export function checkJob(
  cronJob: CronJobTemplate,
  view: AppView,
  a: Extract<CheckAction, { kind: 'start-check' }>,
  owner: Deployment,
): Record<string, unknown> {
  const jt = structuredClone(cronJob.spec?.jobTemplate ?? {});
  const spec = jt.spec ?? {};
  const tmpl: PodTemplateSpec = spec.template ?? {};
  const labels = { [APP_LABEL]: view.app, [CHECK_PHASE_LABEL]: a.phase, [CHECK_VERSION_LABEL]: a.record.version, [CHECK_COLOUR_LABEL]: a.colour };
  const svc: Service | undefined = a.phase === 'pre' ? view.previews.find((p) => p.spec?.selector?.[view.slotKey] === a.colour) : view.active;
  const port = (svc?.spec as { ports?: { port?: number }[] } | undefined)?.ports?.[0]?.port;
  const url = svc?.metadata.name ? `http://${svc.metadata.name}.${view.namespace}.svc${port && port !== 80 ? `:${port}` : ''}` : '';
  const env = [
    { name: 'BLUEGREEN_APP', value: view.app },
    { name: 'BLUEGREEN_PHASE', value: a.phase },
    { name: 'BLUEGREEN_COLOUR', value: a.colour },
    { name: 'BLUEGREEN_VERSION', value: a.record.version },
    { name: 'BLUEGREEN_URL', value: url },
  ];
  const containers = (tmpl.spec?.containers ?? []).map((c) => ({ ...c, env: [...((c as { env?: unknown[] }).env ?? []), ...env] }));
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: a.job,
      namespace: view.namespace,
      labels: { ...jt.metadata?.labels, ...labels },
      annotations: { ...jt.metadata?.annotations, 'bluegreen.io/check-template': cronJob.metadata.name ?? '' },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'Deployment', name: owner.metadata.name, uid: owner.metadata.uid, controller: false, blockOwnerDeletion: false },
      ],
    },
    spec: {
      ...spec,
      template: { ...tmpl, metadata: { ...tmpl.metadata, labels: { ...tmpl.metadata?.labels, ...labels } }, spec: { ...tmpl.spec, containers } },
    },
  };
}
