// Release gates, the pure part (src/core/checks.ts): when a check starts, how its Job's end is
// recorded, the gate on a switch, and the rollback after a failed post-switch check.
import { describe, expect, it } from 'vitest';
import { decide } from '../../../src/core/admission/decide.ts';
import {
  CHECK_RESULT_ANNOTATION,
  CHECK_TEMPLATE_ANNOTATION,
  type CheckRecord,
  checkJob,
  type JobOutcome,
  planChecks,
  preSwitchCheckGate,
  readCheck,
} from '../../../src/core/checks.ts';
import type { Deployment } from '../../../src/core/k8s-types.ts';
import { HISTORY_ANNOTATION } from '../../../src/core/labels.ts';
import { planSwitch } from '../../../src/core/switch-plan.ts';
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
    expect(planSwitch(viewOf([blue, withCheck(green, { state: 'running' })], [svc]), { kind: 'switch', now: NOW })).toMatchObject({ ok: false, code: 'checking' });
    expect(planSwitch(viewOf([blue, withCheck(green, { state: 'failed' })], [svc]), { kind: 'switch', now: NOW })).toMatchObject({ ok: false, code: 'check-failed' });
    expect(planSwitch(viewOf([blue, withCheck(green, {})], [svc]), { kind: 'switch', now: NOW })).toMatchObject({ ok: true });
  });

  it('a rollback to the version live before the last switch needs no check', () => {
    const h = JSON.stringify([{ kind: 'switch', from: 'green', to: 'blue', at: '2030-01-01T00:00:00Z', fromTemplate: templateHash(green.spec!.template, 'slot') }]);
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
    expect(gone.action).toMatchObject({ kind: 'finish-check', record: { state: 'failed', reason: 'Job j1 does not exist (deleted, or it could not be created)' } });
  });

  it('a failed post-switch check with the old colour warm: rolls back, the reason in the history', () => {
    const h = JSON.stringify([{ kind: 'switch', from: 'blue', to: 'green', at: '2030-01-02T03:00:00Z', fromTemplate: templateHash(blue.spec!.template, 'slot'), toTemplate: templateHash(green.spec!.template, 'slot') }]);
    const active = annotated(selecting(svc, 'green'), { [CHECK_TEMPLATE_ANNOTATION.post]: 'shop-verify', [HISTORY_ANNOTATION]: h });
    const post = withCheck(green, { phase: 'post', state: 'running', job: 'v1', startedAt: NOW.toISOString(), template: 'shop-verify' });
    const p = planChecks({ view: viewOf([blue, post], [active]), seal: SEAL, now: NOW, jobs: jobs({ v1: { state: 'failed', reason: 'error rate 12%' } }), suffix: 'x' });
    expect(p.action).toMatchObject({ kind: 'check-rollback', from: 'green', to: 'blue', reason: 'post-switch check failed: error rate 12%' });
    const patch = (p.action as unknown as { servicePatch: { spec: unknown; metadata: { annotations: Record<string, string> } } }).servicePatch;
    expect(patch.spec).toEqual({ selector: { slot: 'blue' } });
    expect(JSON.parse(patch.metadata.annotations[HISTORY_ANNOTATION]!).at(-1)).toMatchObject({ kind: 'rollback', by: 'kube-bluegreen', reason: 'post-switch check failed: error rate 12%' });
  });

  it('the Job: the template labelled for the app, with the colour, version and preview URL to test', () => {
    const view = viewOf([blue, green], [svc, annotated(selecting({ ...svc, metadata: { ...svc.metadata, name: 'shop-preview' } }, 'green'), { 'bluegreen.io/role': 'preview' })]);
    const p = planChecks({ view, seal: SEAL, now: NOW, jobs: jobs(), suffix: 'x' });
    const a = p.action as Extract<typeof p.action, { kind: 'start-check' }>;
    const cron = { metadata: { name: 'shop-smoke' }, spec: { jobTemplate: { spec: { backoffLimit: 0, template: { spec: { restartPolicy: 'Never', containers: [{ name: 't', image: 'curl' }] } } } } } };
    const job = checkJob(cron, view, a, green) as { metadata: { labels: Record<string, string> }; spec: { backoffLimit: number; template: { spec: { containers: { env: { name: string; value: string }[] }[] } } } };
    expect(job.metadata.labels).toMatchObject({ 'bluegreen.io/app': 'shop', 'bluegreen.io/check': 'pre', 'bluegreen.io/check-colour': 'green' });
    expect(job.spec.backoffLimit).toBe(0);
    expect(job.spec.template.spec.containers[0]!.env).toContainEqual({ name: 'BLUEGREEN_URL', value: `http://shop-preview.${view.namespace}.svc` });
  });
});
