// Release gates, the pure part (src/core/checks.ts): when a check starts, how its Job's end is
// recorded, the gate on a switch, and the rollback after a failed post-switch check.
import { describe, expect, it } from 'vitest';
import { decide } from '../../../src/core/admission/decide.ts';
import {
  CHECK_RESULT_ANNOTATION,
  CHECK_TEMPLATE_ANNOTATION,
  type CheckRecord,
  checkJob,
  checkViews,
  type JobOutcome,
  planChecks,
  preSwitchCheckGate,
  readCheck,
  readCheckUnverified,
  rerunCheckPatch,
} from '../../../src/core/checks.ts';
import type { Deployment } from '../../../src/core/k8s-types.ts';
import { HISTORY_ANNOTATION } from '../../../src/core/labels.ts';
import { planSwitch } from '../../../src/core/switch-plan.ts';
import { appStatus } from '../../../src/core/status.ts';
import { templateHash } from '../../../src/core/template.ts';
import { annotated, CTX, IMAGE_V2, NOW, SEAL, selecting, serviceUpdate, shop, viewOf } from './builders.ts';

const PRE = { [CHECK_TEMPLATE_ANNOTATION.pre]: 'shop-smoke' };

function withCheck(d: Deployment, r: Partial<CheckRecord>, sealed = true): Deployment {
  const record: CheckRecord = {
    kind: 'check',
    phase: 'pre',
    deployment: d.metadata.uid ?? '',
    colour: 'green',
    version: templateHash(d.spec?.template, 'slot'),
    template: 'shop-smoke',
    job: 'shop-green-pre-x',
    state: 'passed',
    startedAt: '2030-01-02T03:00:00.000Z',
    ...r,
  };
  const value = sealed ? SEAL.sealObject({ ...record }) : JSON.stringify(record);
  return annotated(d, { [CHECK_RESULT_ANNOTATION[record.phase]]: value });
}

const jobs = (m: Record<string, JobOutcome | null> = {}) => new Map(Object.entries(m));

describe('the pre-switch gate', () => {
  const { blue, green, svc } = shop({ idleImage: IMAGE_V2, serviceAnnotations: PRE });
  const gateOf = (g: Deployment) => preSwitchCheckGate(viewOf([blue, g], [svc]), 'green', (d, p) => readCheck(d, p, SEAL));

  it.each<[string, Deployment, 'waiting' | 'failed' | undefined]>([
    ['no check yet', green, 'waiting'],
    ['running', withCheck(green, { state: 'running' }), 'waiting'],
    ['failed', withCheck(green, { state: 'failed', reason: 'smoke test 3 of 7 failed' }), 'failed'],
    ['passed, this version', withCheck(green, {}), undefined],
    ['passed, another version', withCheck(green, { version: 'aaaaaaaaaaaa' }), 'waiting'],
    ['passed, but written by hand (no seal)', withCheck(green, {}, false), 'waiting'],
    ['passed, copied from another Deployment', withCheck(green, { deployment: 'uid-of-another' }), 'waiting'],
  ])('%s', (_name, g, state) => {
    expect(gateOf(g)?.state).toBe(state);
  });

  it('the webhook refuses the switch with the reason; the override passes with a warning', () => {
    const view = viewOf([blue, green], [svc]);
    const d = decide('validate', serviceUpdate(svc, selecting(svc, 'green')), view, NOW, CTX);
    expect(d.allowed).toBe(false);
    expect(!d.allowed && d.outcome === 'denied' && d.message).toContain(
      `version ${templateHash(green.spec!.template, 'slot')} of shop-green has not passed its pre-switch check (CronJob shop-smoke)`,
    );
    const forced = annotated(selecting(svc, 'green'), { 'bluegreen.io/force-switch-to': 'green' });
    expect(decide('validate', serviceUpdate(svc, forced), view, NOW, CTX)).toMatchObject({ allowed: true });
    const passed = viewOf([blue, withCheck(green, {})], [svc]);
    expect(decide('validate', serviceUpdate(svc, selecting(svc, 'green')), passed, NOW, CTX)).toEqual({ allowed: true, outcome: 'allowed', warnings: [] });
  });

  it('kubectl bg switch: checking (waitable) vs check-failed (not)', () => {
    expect(planSwitch(viewOf([blue, withCheck(green, { state: 'running' })], [svc]), { kind: 'switch', now: NOW })).toMatchObject({
      ok: false,
      code: 'checking',
    });
    expect(planSwitch(viewOf([blue, withCheck(green, { state: 'failed' })], [svc]), { kind: 'switch', now: NOW })).toMatchObject({
      ok: false,
      code: 'check-failed',
    });
    expect(planSwitch(viewOf([blue, withCheck(green, {})], [svc]), { kind: 'switch', now: NOW })).toMatchObject({ ok: true });
  });

  it('the webhook admits the rollback that appends its own record to the history (judged on the history as stored)', () => {
    // green (failed its check) was forced live, then blue went live; now back to green, with the rollback record in the same patch.
    const vBlue = templateHash(blue.spec!.template, 'slot');
    const vGreen = templateHash(green.spec!.template, 'slot');
    const switched = { kind: 'switch', from: 'green', to: 'blue', at: '2030-01-01T00:00:00Z', fromTemplate: vGreen, toTemplate: vBlue };
    const stored = annotated(svc, { [HISTORY_ANNOTATION]: JSON.stringify([switched]) });
    const back = { kind: 'rollback', from: 'blue', to: 'green', at: '2030-01-02T03:04:05Z', fromTemplate: vBlue, toTemplate: vGreen };
    const next = annotated(selecting(stored, 'green'), { [HISTORY_ANNOTATION]: JSON.stringify([switched, back]) });
    const view = viewOf([blue, withCheck(green, { state: 'failed' })], [stored]);
    expect(decide('validate', serviceUpdate(stored, next), view, NOW, CTX)).toEqual({ allowed: true, outcome: 'allowed', warnings: [] });
    // A record planted in the same patch does not make a failed version a rollback target.
    const planted = annotated(selecting(svc, 'green'), { [HISTORY_ANNOTATION]: JSON.stringify([switched]) });
    expect(decide('validate', serviceUpdate(svc, planted), viewOf([blue, withCheck(green, { state: 'failed' })], [svc]), NOW, CTX)).toMatchObject({
      allowed: false,
    });
  });

  it('a rollback to the version live before the last switch needs no check', () => {
    const h = JSON.stringify([
      { kind: 'switch', from: 'green', to: 'blue', at: '2030-01-01T00:00:00Z', fromTemplate: templateHash(green.spec!.template, 'slot') },
    ]);
    const view = viewOf([blue, green], [annotated(svc, { [HISTORY_ANNOTATION]: h })]);
    expect(preSwitchCheckGate(view, 'green', (d, p) => readCheck(d, p, SEAL))).toBeUndefined();
  });
});

describe('planChecks', () => {
  const { blue, green, svc } = shop({ idleImage: IMAGE_V2, serviceAnnotations: PRE });

  it('starts a check once the idle colour runs a new version, rolled out and available', () => {
    const p = planChecks({ view: viewOf([blue, green], [svc]), seal: SEAL, now: NOW, jobs: jobs(), suffix: 'ab12' });
    expect(p.action).toMatchObject({ kind: 'start-check', phase: 'pre', deployment: 'shop-green', colour: 'green', template: 'shop-smoke' });
    const a = p.action as Extract<typeof p.action, { kind: 'start-check' }>;
    expect(a.job).toBe(`shop-green-pre-${templateHash(green.spec!.template, 'slot').slice(0, 8)}-ab12`);
    expect(a.record).toMatchObject({ state: 'running', version: templateHash(green.spec!.template, 'slot'), deployment: green.metadata.uid });
    expect(SEAL.openObject(a.ops.at(-1)!.value as string)).toMatchObject({ kind: 'check', state: 'running' });
  });

  it.each<[string, Deployment]>([
    ['the idle colour runs the live version', shop({ serviceAnnotations: PRE }).green],
    ['the idle colour is scaled down', { ...green, spec: { ...green.spec, replicas: 0 } }],
    ['its check for this version has passed', withCheck(green, {})],
  ])('starts nothing when %s', (_name, g) => {
    expect(planChecks({ view: viewOf([blue, g], [svc]), seal: SEAL, now: NOW, jobs: jobs(), suffix: 'x' }).action).toBeUndefined();
  });

  it('a running check: reads its Job first, waits while it runs, records the end', () => {
    const running = withCheck(green, { state: 'running', job: 'j1', startedAt: NOW.toISOString() });
    const view = viewOf([blue, running], [svc]);
    expect(planChecks({ view, seal: SEAL, now: NOW, jobs: jobs(), suffix: 'x' })).toEqual({ needJobs: ['j1'] });
    expect(planChecks({ view, seal: SEAL, now: NOW, jobs: jobs({ j1: { state: 'running' } }), suffix: 'x' })).toEqual({ needJobs: [], recheckMs: 2000 });
    const ok = planChecks({ view, seal: SEAL, now: NOW, jobs: jobs({ j1: { state: 'succeeded' } }), suffix: 'x' });
    expect(ok.action).toMatchObject({ kind: 'finish-check', record: { state: 'passed' } });
    const gone = planChecks({ view, seal: SEAL, now: NOW, jobs: jobs({ j1: null }), suffix: 'x' });
    expect(gone.action).toMatchObject({
      kind: 'finish-check',
      record: { state: 'failed', reason: 'Job j1 does not exist (deleted, or it could not be created)' },
    });
  });

  it('a failed post-switch check with the old colour warm: rolls back, the reason in the history', () => {
    const h = JSON.stringify([
      {
        kind: 'switch',
        from: 'blue',
        to: 'green',
        at: '2030-01-02T03:00:00Z',
        fromTemplate: templateHash(blue.spec!.template, 'slot'),
        toTemplate: templateHash(green.spec!.template, 'slot'),
      },
    ]);
    const active = annotated(selecting(svc, 'green'), { [CHECK_TEMPLATE_ANNOTATION.post]: 'shop-verify', [HISTORY_ANNOTATION]: h });
    const post = withCheck(green, { phase: 'post', state: 'running', job: 'v1', startedAt: NOW.toISOString(), template: 'shop-verify' });
    const p = planChecks({
      view: viewOf([blue, post], [active]),
      seal: SEAL,
      now: NOW,
      jobs: jobs({ v1: { state: 'failed', reason: 'error rate 12%' } }),
      suffix: 'x',
    });
    expect(p.action).toMatchObject({ kind: 'check-rollback', from: 'green', to: 'blue', reason: 'post-switch check failed: error rate 12%' });
    const patch = (p.action as unknown as { servicePatch: { spec: unknown; metadata: { annotations: Record<string, string> } } }).servicePatch;
    expect(patch.spec).toEqual({ selector: { slot: 'blue' } });
    expect(JSON.parse(patch.metadata.annotations[HISTORY_ANNOTATION]!).at(-1)).toMatchObject({
      kind: 'rollback',
      by: 'kube-bluegreen',
      reason: 'post-switch check failed: error rate 12%',
    });
  });

  it('the Job: the template labelled for the app, with the colour, version and preview URL to test', () => {
    const view = viewOf(
      [blue, green],
      [svc, annotated(selecting({ ...svc, metadata: { ...svc.metadata, name: 'shop-preview' } }, 'green'), { 'bluegreen.io/role': 'preview' })],
    );
    const p = planChecks({ view, seal: SEAL, now: NOW, jobs: jobs(), suffix: 'x' });
    const a = p.action as Extract<typeof p.action, { kind: 'start-check' }>;
    const cron = {
      metadata: { name: 'shop-smoke' },
      spec: { jobTemplate: { spec: { backoffLimit: 0, template: { spec: { restartPolicy: 'Never', containers: [{ name: 't', image: 'curl' }] } } } } },
    };
    const job = checkJob(cron, view, a, green) as {
      metadata: { labels: Record<string, string> };
      spec: { backoffLimit: number; template: { spec: { containers: { env: { name: string; value: string }[] }[] } } };
    };
    expect(job.metadata.labels).toMatchObject({ 'bluegreen.io/app': 'shop', 'bluegreen.io/check': 'pre', 'bluegreen.io/check-colour': 'green' });
    expect(job.spec.backoffLimit).toBe(0);
    expect(job.spec.template.spec.containers[0]!.env).toContainEqual({ name: 'BLUEGREEN_URL', value: `http://shop-preview.${view.namespace}.svc` });
  });
});

describe('rollback after a failed post-switch check: never back and forth', () => {
  const { blue, green, svc } = shop({ idleImage: IMAGE_V2, serviceAnnotations: PRE });
  const vBlue = templateHash(blue.spec!.template, 'slot');
  const vGreen = templateHash(green.spec!.template, 'slot');
  // green (v2) went live, its post-switch check failed, the reconciler rolled back to blue; now blue's own check fails too.
  const h = JSON.stringify([
    { kind: 'switch', from: 'blue', to: 'green', at: '2030-01-02T03:00:00Z', fromTemplate: vBlue, toTemplate: vGreen },
    { kind: 'rollback', from: 'green', to: 'blue', at: '2030-01-02T03:01:00Z', by: 'kube-bluegreen', fromTemplate: vGreen, toTemplate: vBlue },
  ]);
  const active = annotated(svc, { [CHECK_TEMPLATE_ANNOTATION.post]: 'shop-verify', [HISTORY_ANNOTATION]: h });
  const blueRunning = withCheck(blue, {
    phase: 'post',
    colour: 'blue',
    version: vBlue,
    state: 'running',
    job: 'v2',
    startedAt: NOW.toISOString(),
    template: 'shop-verify',
  });
  const input = (g: Deployment) => ({
    view: viewOf([blueRunning, g], [active]),
    seal: SEAL,
    now: NOW,
    jobs: jobs({ v2: { state: 'failed' as const, reason: 'check broken' } }),
    suffix: 'x',
  });

  it.each<[string, Deployment, string]>([
    [
      'green failed its own post-switch check: the failure is recorded, no switch',
      withCheck(green, { phase: 'post', version: vGreen, state: 'failed', template: 'shop-verify' }),
      'finish-check',
    ],
    [
      'green never failed one (its check passed): back to green',
      withCheck(green, { phase: 'post', version: vGreen, state: 'passed', template: 'shop-verify' }),
      'check-rollback',
    ],
  ])('%s', (_name, g, kind) => {
    expect(planChecks(input(g)).action?.kind).toBe(kind);
  });
});

describe('checkViews: the checks that matter now (kubectl bg check, status)', () => {
  const { blue, green, svc } = shop({ idleImage: IMAGE_V2, serviceAnnotations: PRE });
  const vGreen = templateHash(green.spec!.template, 'slot');
  const views = (ds: Deployment[], s = svc) => checkViews(viewOf(ds, [s]), readCheckUnverified);

  it.each<[string, Deployment[], unknown[]]>([
    [
      'no result yet: waiting',
      [blue, green],
      [{ phase: 'pre', colour: 'green', deployment: 'shop-green', version: vGreen, state: 'waiting', job: null, previous: null }],
    ],
    [
      'running',
      [blue, withCheck(green, { state: 'running', job: 'j1' })],
      [{ phase: 'pre', state: 'running', job: 'j1', startedAt: '2030-01-02T03:00:00.000Z' }],
    ],
    [
      'failed, with the reason',
      [blue, withCheck(green, { state: 'failed', job: 'j1', reason: 'BackoffLimitExceeded' })],
      [{ state: 'failed', reason: 'BackoffLimitExceeded' }],
    ],
    [
      'a result for an older version: waiting, the old one shown',
      [blue, withCheck(green, { state: 'passed', version: 'aaaaaaaaaaaa', job: 'old' })],
      [{ state: 'waiting', job: null, previous: { version: 'aaaaaaaaaaaa', state: 'passed', job: 'old' } }],
    ],
    ['the idle colour runs the live version: none', [blue, shop({ serviceAnnotations: PRE }).green], []],
  ])('%s', (_name, ds, expected) => {
    expect(views(ds)).toMatchObject(expected);
  });

  it('status: checking while the check runs or waits, check-failed when it failed, ready-to-switch once passed', () => {
    expect(appStatus(viewOf([blue, green], [svc])).phase).toBe('checking');
    const failed = appStatus(viewOf([blue, withCheck(green, { state: 'failed', reason: 'smoke 3 of 7' })], [svc]));
    expect([failed.phase, failed.message]).toEqual([
      'check-failed',
      `green is rolled out and available, but version ${vGreen} of shop-green has not passed its pre-switch check (CronJob shop-smoke): Job shop-green-pre-x failed (smoke 3 of 7); fix the version and roll it out again, or run the check again with 'kubectl bg check shop -n prod --rerun'`,
    ]);
    expect(appStatus(viewOf([blue, withCheck(green, {})], [svc])).phase).toBe('ready-to-switch');
    expect(appStatus(viewOf([blue, withCheck(green, {})], [svc])).checks).toMatchObject([{ phase: 'pre', state: 'passed' }]);
  });

  it('--rerun removes the result, guarded by its value; nothing to remove without one', () => {
    const d = withCheck(green, { state: 'failed' });
    const value = d.metadata.annotations![CHECK_RESULT_ANNOTATION.pre];
    expect(rerunCheckPatch(d, 'pre')).toEqual([
      { op: 'test', path: '/metadata/annotations/bluegreen.io~1pre-switch-check-result', value },
      { op: 'remove', path: '/metadata/annotations/bluegreen.io~1pre-switch-check-result' },
    ]);
    expect(rerunCheckPatch(green, 'pre')).toBeUndefined();
  });
});
