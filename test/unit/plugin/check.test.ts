// kubectl bg check: the release gates as the plugin shows them, waits for them, and reruns one.
// The webhook's reconciler (which starts the Jobs and records results) is played by onSleep.
import { describe, expect, it } from 'vitest';
import { CHECK_RESULT_ANNOTATION, CHECK_TEMPLATE_ANNOTATION, type CheckRecord } from '../../../src/core/checks.ts';
import type { Deployment } from '../../../src/core/k8s-types.ts';
import { templateHash } from '../../../src/core/template.ts';
import { FakeCluster } from './fake-cluster.ts';
import { dep, harness, seedShop, T0 } from './harness.ts';

const PRE = { [CHECK_TEMPLATE_ANNOTATION.pre]: 'shop-smoke' };
const V2 = templateHash(dep('shop-green', { colour: 'green', image: 'registry.example/shop:v2' }).spec?.template, 'slot');
const V2_SHORT = V2.slice(0, 8);

function record(r: Partial<CheckRecord> = {}): string {
  const full: CheckRecord = {
    kind: 'check',
    phase: 'pre',
    deployment: 'uid-shop-green',
    colour: 'green',
    version: V2,
    template: 'shop-smoke',
    job: 'shop-green-pre-1',
    state: 'passed',
    startedAt: '2026-01-01T11:59:00.000Z',
    finishedAt: '2026-01-01T11:59:30.000Z',
    ...r,
  };
  return JSON.stringify(full);
}

function setup(result?: Partial<CheckRecord>, serviceAnnotations: Record<string, string> = PRE) {
  const x = harness();
  seedShop(x.cluster, {
    service: { annotations: serviceAnnotations },
    ...(result ? { green: { annotations: { [CHECK_RESULT_ANNOTATION.pre]: record(result) } } } : {}),
  });
  return x;
}

/** What the reconciler would write on the idle Deployment. */
function writeResult(c: FakeCluster, r: Partial<CheckRecord>): void {
  const g = c.peek<Deployment>('deployments', 'shop-green')!;
  g.metadata.annotations = { ...g.metadata.annotations, [CHECK_RESULT_ANNOTATION.pre]: record(r) };
  c.put('deployments', g);
}

describe('check', () => {
  it.each<[string, Partial<CheckRecord> | undefined, { code: number; out: string; err: string }]>([
    [
      'passed: exit 0',
      {},
      { code: 0, out: `Pre-switch check: green version ${V2_SHORT} (CronJob shop-smoke): passed, Job shop-green-pre-1, 30s ago\n`, err: '' },
    ],
    [
      'not started yet: exit 2, and how to wait',
      undefined,
      {
        code: 2,
        out: `Pre-switch check: green version ${V2_SHORT} (CronJob shop-smoke): waiting to start (once shop-green is rolled out and available)\n`,
        err: `error: the pre-switch check of shop-green (version ${V2_SHORT}) has not passed yet (waiting)\nhint: kubectl bg check shop --wait\n`,
      },
    ],
    [
      'failed: exit 2, with the reason and the ways out',
      { state: 'failed', reason: 'BackoffLimitExceeded: Job has reached the specified backoff limit' },
      {
        code: 2,
        out: `Pre-switch check: green version ${V2_SHORT} (CronJob shop-smoke): failed (BackoffLimitExceeded: Job has reached the specified backoff limit), Job shop-green-pre-1, 30s ago\n`,
        err:
          `error: the pre-switch check of shop-green (version ${V2_SHORT}) failed: BackoffLimitExceeded: Job has reached the specified backoff limit\n` +
          `hint: fix the version and roll it out again, or run the check again with 'kubectl bg check shop --rerun --wait'; 'kubectl bg switch shop --force' overrides (recorded in the history)\n`,
      },
    ],
    [
      'an older version passed: the new one waits, the old result shown',
      { version: 'aaaaaaaaaaaa' },
      {
        code: 2,
        out: `Pre-switch check: green version ${V2_SHORT} (CronJob shop-smoke): waiting to start (once shop-green is rolled out and available); the last check, of version aaaaaaaa, passed\n`,
        err: `error: the pre-switch check of shop-green (version ${V2_SHORT}) has not passed yet (waiting)\nhint: kubectl bg check shop --wait\n`,
      },
    ],
  ])('%s', async (_name, r, expected) => {
    expect(await setup(r).run('check', 'shop')).toEqual(expected);
  });

  it('an app without checks: exit 2, naming the annotation', async () => {
    const r = await setup(undefined, {}).run('check', 'shop');
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      `error: app shop declares no release checks\nhint: name a CronJob (suspend: true) whose jobTemplate is the check: 'kubectl annotate service shop bluegreen.io/pre-switch-check=<cronjob>'\n`,
    );
  });

  it('--wait prints each change once and ends with the result', async () => {
    const x = setup();
    const r = await harness({
      cluster: x.cluster,
      now: T0,
      onSleep: (n) => {
        if (n === 2) writeResult(x.cluster, { state: 'running', finishedAt: undefined as never, startedAt: T0 });
        if (n === 5) writeResult(x.cluster, { state: 'passed', startedAt: T0, finishedAt: '2026-01-01T12:00:05.000Z' });
      },
    }).run('check', 'shop', '--wait');
    expect(r).toEqual({
      code: 0,
      out:
        `Pre-switch check: green version ${V2_SHORT} (CronJob shop-smoke): waiting to start (once shop-green is rolled out and available)\n` +
        `Pre-switch check: green version ${V2_SHORT} (CronJob shop-smoke): running, Job shop-green-pre-1, started 2s ago\n` +
        `Pre-switch check: green version ${V2_SHORT} (CronJob shop-smoke): passed, Job shop-green-pre-1, 0s ago\n`,
      err: '',
    });
  });

  it('--wait: a failure ends the wait with exit 2; --timeout runs out with exit 3', async () => {
    const x = setup({ state: 'running' });
    const failing = harness({ cluster: x.cluster, onSleep: (n) => n === 3 && writeResult(x.cluster, { state: 'failed', reason: 'smoke 2 of 5' }) });
    const f = await failing.run('check', 'shop', '--wait');
    expect([f.code, f.err.split('\n')[0]]).toEqual([2, `error: the pre-switch check of shop-green (version ${V2_SHORT}) failed: smoke 2 of 5`]);
    const stuck = setup({ state: 'running' });
    const t = await stuck.run('check', 'shop', '--wait', '--timeout', '5s');
    expect([t.code, t.err.split('\n')[0]]).toEqual([3, 'error: timed out after 5s waiting for the checks of shop: pre-switch running']);
  });

  it('--rerun removes the failed result (guarded by its value) and the reconciler starts anew', async () => {
    const x = setup({ state: 'failed' });
    const before = x.cluster.peek<Deployment>('deployments', 'shop-green')!.metadata.annotations![CHECK_RESULT_ANNOTATION.pre];
    const r = await x.run('check', 'shop', '--rerun');
    expect(r.code).toBe(2);
    expect(r.err.split('\n')[0]).toBe(
      `removed ${CHECK_RESULT_ANNOTATION.pre} from shop-green (Job shop-green-pre-1, failed); the webhook's reconciler runs the check again for version ${V2_SHORT}`,
    );
    expect(x.cluster.realWrites().map((w) => [w.op, w.kind, w.name, w.type, w.patch])).toEqual([
      [
        'patch',
        'deployments',
        'shop-green',
        'json',
        [
          { op: 'test', path: '/metadata/annotations/bluegreen.io~1pre-switch-check-result', value: before },
          { op: 'remove', path: '/metadata/annotations/bluegreen.io~1pre-switch-check-result' },
        ],
      ],
    ]);
    expect(x.cluster.peek<Deployment>('deployments', 'shop-green')!.metadata.annotations?.[CHECK_RESULT_ANNOTATION.pre]).toBeUndefined();
  });

  it.each<[string, Partial<CheckRecord>, string]>([
    ['running', { state: 'running' }, 'error: the pre-switch check of shop-green is running (Job shop-green-pre-1)'],
  ])('--rerun while %s: refused, nothing written', async (_n, r, err) => {
    const x = setup(r);
    const out = await x.run('check', 'shop', '--rerun');
    expect([out.code, out.err.split('\n')[0], x.cluster.realWrites()]).toEqual([2, err, []]);
  });

  it('-o json: {app, namespace, checks}', async () => {
    const doc = JSON.parse((await setup({}).run('check', 'shop', '-o', 'json')).out);
    expect(doc).toEqual({
      app: 'shop',
      namespace: 'default',
      checks: [
        {
          phase: 'pre',
          template: 'shop-smoke',
          colour: 'green',
          deployment: 'shop-green',
          version: V2,
          state: 'passed',
          job: 'shop-green-pre-1',
          startedAt: '2026-01-01T11:59:00.000Z',
          finishedAt: '2026-01-01T11:59:30.000Z',
          reason: null,
          previous: null,
        },
      ],
    });
  });
});
