// The reconciler and leader election over the in-memory FakeCluster: a change
// recorded by admission reaches the idle colour and nothing else; stale
// snapshots never scale the live colour down; failures are reported, not lost.
import { CHECK_TEMPLATE_ANNOTATION, readCheck } from '../../../src/core/checks.ts';
import { describe, expect, it } from 'vitest';
import { decide } from '../../../src/core/admission/decide.ts';
import type { Deployment } from '../../../src/core/k8s-types.ts';
import { HISTORY_ANNOTATION, LAST_CHANGE_ANNOTATION, LIVE_LABEL, PENDING_CHANGE_ANNOTATION, SCALE_DOWN_AT_ANNOTATION } from '../../../src/core/labels.ts';
import { appendHistory } from '../../../src/core/history.ts';
import { templateHash } from '../../../src/core/template.ts';
import { ApiError, isPatchTestFailure } from '../../../src/kube/errors.ts';
import { EnrolledObjectStore } from '../../../src/webhook/cache.ts';
import { LeaderElector } from '../../../src/webhook/leader.ts';
import { createLogger } from '../../../src/webhook/logger.ts';
import { Reconciler } from '../../../src/webhook/reconciler.ts';
import {
  annotated,
  CTX,
  deploymentUpdate,
  edit,
  hpa,
  IMAGE_V1,
  IMAGE_V2,
  NOW,
  SEAL,
  sealedRecord,
  selecting,
  serviceUpdate,
  shop,
  type ShopOptions,
  withImage,
} from '../core/builders.ts';
import { FakeCluster } from './fake-cluster.ts';

const log = createLogger('silent');

/** The switch from green to blue recorded, and green's scale-down due a second ago. */
async function greenDueForScaleDown(w: ReturnType<typeof world>): Promise<void> {
  const history = appendHistory([], {
    kind: 'switch',
    from: 'green',
    to: 'blue',
    at: NOW.toISOString(),
    fromTemplate: templateHash(w.s.green.spec!.template, 'slot'),
    fromGeneration: 1,
  });
  await w.cluster.patchService(
    'prod',
    'shop',
    { metadata: { annotations: { [SCALE_DOWN_AT_ANNOTATION]: new Date(NOW.getTime() - 1000).toISOString(), [HISTORY_ANNOTATION]: history } } },
    'merge',
  );
}

function world(o: { leader?: boolean; shop?: ShopOptions } = {}) {
  const s = shop(o.shop);
  const cluster = new FakeCluster();
  cluster.put('deployment', s.blue);
  cluster.put('deployment', s.green);
  cluster.put('service', s.svc);
  const store = new EnrolledObjectStore();
  const sync = () => {
    store.replaceAll('deployment', [...cluster.deployments.values()]);
    store.replaceAll('service', [...cluster.services.values()]);
    store.synced = true;
  };
  sync();
  const reconciler = new Reconciler({ cluster, cache: store, seal: SEAL, log, now: () => NOW, isLeader: () => o.leader ?? true });
  return { s, cluster, store, sync, reconciler };
}

/** A user's `kubectl set image` on the live colour, as the API server stores it after our mutating webhook. */
async function setImageOnLive(w: ReturnType<typeof world>, image: string, uid = 'req-1') {
  const blue = w.cluster.getDeployment('prod', 'shop-blue')!;
  const d = decide('mutate', deploymentUpdate(blue, withImage(blue, image), { uid }), w.store.view('prod', 'shop'), NOW, CTX);
  if (!d.allowed || !d.patch) throw new Error(`expected a redirect, got ${JSON.stringify(d)}`);
  // The user's own change (the image), then our patch (template back, record added): one stored update.
  const wanted = withImage(blue, image);
  await w.cluster.patchDeployment('prod', 'shop-blue', [{ op: 'replace', path: '/spec/template', value: wanted.spec!.template }, ...d.patch], 'json');
  w.sync();
}

const image = (d: Deployment | undefined) => d?.spec?.template?.spec?.containers?.[0]?.image;

describe('Reconciler: a recorded change', () => {
  it('reaches the idle colour with its outcome; the live colour is not written; both colours get an Event', async () => {
    const w = world();
    await setImageOnLive(w, IMAGE_V2);
    const blueStored = w.cluster.getDeployment('prod', 'shop-blue')!;
    expect(blueStored.metadata.annotations?.[PENDING_CHANGE_ANNOTATION]).toBeDefined();
    await w.reconciler.reconcile('prod', 'shop');
    const blue = w.cluster.getDeployment('prod', 'shop-blue')!;
    expect(blue.metadata.resourceVersion).toBe(blueStored.metadata.resourceVersion);
    const green = w.cluster.getDeployment('prod', 'shop-green')!;
    expect(image(blue)).toBe(IMAGE_V1);
    expect(image(green)).toBe(IMAGE_V2);
    expect(green.spec!.template!.metadata!.labels!.slot).toBe('green');
    expect(green.metadata.generation).toBe(2);
    expect(JSON.parse(green.metadata.annotations![LAST_CHANGE_ANNOTATION]!)).toMatchObject({ request: 'req-1', applied: true, from: 'shop-blue' });
    expect(w.cluster.events.map((e) => [e.involvedObject.name, e.reason, e.type])).toEqual([
      ['shop-blue', 'ChangeRedirected', 'Normal'],
      ['shop-green', 'RedirectedChange', 'Normal'],
    ]);
    expect(w.cluster.events[0]!.message).toBe('the image change by alice went to shop-green (idle); shop-blue kept its template');
  });

  it('is idempotent: a second pass (a retry, a resync, a restarted webhook) writes nothing', async () => {
    const w = world();
    await setImageOnLive(w, IMAGE_V2);
    await w.reconciler.reconcile('prod', 'shop');
    w.sync();
    const before = w.cluster.calls.length;
    await new Reconciler({ cluster: w.cluster, cache: w.store, seal: SEAL, log, now: () => NOW, isLeader: () => true }).reconcile('prod', 'shop');
    expect(w.cluster.calls.slice(before).filter((c) => c.method.startsWith('patch'))).toEqual([]);
  });

  it('the newest of two changes wins; the replaced one is reported, not lost silently', async () => {
    const w = world();
    await setImageOnLive(w, IMAGE_V2, 'r-1');
    await setImageOnLive(w, 'registry.example/shop:v3', 'r-2');
    await w.reconciler.reconcile('prod', 'shop');
    expect(image(w.cluster.getDeployment('prod', 'shop-green'))).toBe('registry.example/shop:v3');
    const replaced = w.cluster.events.find((e) => e.reason === 'ChangeReplaced');
    expect(replaced?.type).toBe('Warning');
    expect(replaced?.message).toBe('the image change by alice (request r-1) was replaced by the image change by alice before it was applied');
  });

  it('a change the idle colour refuses is reported (annotation, Warning Events), not lost silently', async () => {
    const w = world();
    await setImageOnLive(w, IMAGE_V2);
    w.cluster.validate = (kind, o) =>
      kind === 'deployment' && image(o as Deployment) === IMAGE_V2 && o.metadata.name === 'shop-green' ? 'spec.template: Invalid value' : undefined;
    await w.reconciler.reconcile('prod', 'shop');
    const green = w.cluster.getDeployment('prod', 'shop-green')!;
    expect(image(green)).toBe(IMAGE_V1);
    expect(JSON.parse(green.metadata.annotations![LAST_CHANGE_ANNOTATION]!)).toMatchObject({
      by: 'alice',
      request: 'req-1',
      applied: false,
      images: [`app=${IMAGE_V2}`],
    });
    expect(JSON.parse(green.metadata.annotations![LAST_CHANGE_ANNOTATION]!).reason).toMatch(/^shop-green refused it: .*spec\.template: Invalid value/);
    expect(w.cluster.events.map((e) => [e.involvedObject.name, e.reason, e.type])).toEqual([
      ['shop-blue', 'ChangeNotApplied', 'Warning'],
      ['shop-green', 'ChangeNotApplied', 'Warning'],
    ]);
  });

  it('a transient failure keeps the record: the next pass applies it', async () => {
    const w = world();
    await setImageOnLive(w, IMAGE_V2);
    w.cluster.fail('patchDeployment', new ApiError(503, 'ServiceUnavailable', 'etcd leader changed', {}));
    await expect(w.reconciler.reconcile('prod', 'shop')).rejects.toThrow(/etcd leader changed/);
    expect(w.cluster.getDeployment('prod', 'shop-green')!.metadata.annotations?.[LAST_CHANGE_ANNOTATION]).toBeUndefined();
    await w.reconciler.reconcile('prod', 'shop');
    expect(image(w.cluster.getDeployment('prod', 'shop-green'))).toBe(IMAGE_V2);
  });

  it('a record planted by hand (not sealed) is removed with a Warning, nothing applied', async () => {
    const w = world();
    await w.cluster.patchDeployment(
      'prod',
      'shop-blue',
      { metadata: { annotations: { [PENDING_CHANGE_ANNOTATION]: JSON.stringify({ v: 1, template: withImage(w.s.blue, 'evil:1').spec!.template }) } } },
      'merge',
    );
    w.sync();
    await w.reconciler.reconcile('prod', 'shop');
    expect(image(w.cluster.getDeployment('prod', 'shop-green'))).toBe(IMAGE_V1);
    expect(w.cluster.getDeployment('prod', 'shop-blue')!.metadata.annotations?.[PENDING_CHANGE_ANNOTATION]).toBeUndefined();
    expect(w.cluster.events.map((e) => e.reason)).toEqual(['ChangeNotApplied']);
  });

  it('only the leader acts', async () => {
    const w = world({ leader: false });
    await setImageOnLive(w, IMAGE_V2);
    w.reconciler.enqueue('prod', 'shop');
    await w.reconciler.idle();
    expect(image(w.cluster.getDeployment('prod', 'shop-green'))).toBe(IMAGE_V1);
  });
});

describe('Reconciler: live labels and the scale-down act on a fresh read', () => {
  it('after a raw selector switch, the live labels follow the Service (true at once; false after the grace)', async () => {
    const w = world();
    await w.cluster.patchService('prod', 'shop', { spec: { selector: { slot: 'green' } } }, 'merge');
    w.sync();
    let now = NOW.getTime();
    const r = new Reconciler({ cluster: w.cluster, cache: w.store, seal: SEAL, log, now: () => new Date(now), isLeader: () => true });
    await r.reconcile('prod', 'shop');
    expect(w.cluster.getDeployment('prod', 'shop-green')!.metadata.labels![LIVE_LABEL]).toBe('true');
    expect(w.cluster.getDeployment('prod', 'shop-blue')!.metadata.labels![LIVE_LABEL]).toBe('true');
    w.sync();
    now += 1000;
    await r.reconcile('prod', 'shop');
    expect(w.cluster.getDeployment('prod', 'shop-blue')!.metadata.labels![LIVE_LABEL]).toBe('false');
  });

  it('a stale snapshot (cache: blue live, green due for scale-down) with the cluster rolled back to green: green is never scaled down', async () => {
    const w = world();
    await greenDueForScaleDown(w);
    w.sync(); // the cache's snapshot: blue live, green due
    // Then a rollback the cache has not seen: green labelled live, the Service on green.
    await w.cluster.patchDeployment('prod', 'shop-green', { metadata: { labels: { [LIVE_LABEL]: 'true' } } }, 'merge');
    await w.cluster.patchService('prod', 'shop', { spec: { selector: { slot: 'green' } } }, 'merge');
    await w.reconciler.reconcile('prod', 'shop');
    expect(w.cluster.getDeployment('prod', 'shop-green')!.spec!.replicas).toBe(2);
    const zeroes = w.cluster.calls.filter((c) => c.method === 'patchDeployment' && JSON.stringify(c.patch).includes('"/spec/replicas","value":0'));
    expect(zeroes.map((c) => c.name)).not.toContain('shop-green');
  });

  it('due and consistent: the old colour is scaled to 0 and the schedule cleared', async () => {
    const w = world();
    await greenDueForScaleDown(w);
    w.sync();
    await w.reconciler.reconcile('prod', 'shop');
    expect(w.cluster.getDeployment('prod', 'shop-green')!.spec!.replicas).toBe(0);
    expect(w.cluster.getDeployment('prod', 'shop-blue')!.spec!.replicas).toBe(2);
    expect(w.cluster.getService('prod', 'shop')!.metadata.annotations?.[SCALE_DOWN_AT_ANNOTATION]).toBeUndefined();
  });
});

describe('Reconciler: its fresh read is a GET of each object the cache knows (a LIST when the cache cannot say)', () => {
  it("by name while the watches deliver; the state read is the cluster's, not the cache's", async () => {
    const w = world();
    await setImageOnLive(w, IMAGE_V2);
    await w.reconciler.reconcile('prod', 'shop');
    const reads = w.cluster.calls.filter((c) => c.method === 'readApp');
    expect(reads.length).toBeGreaterThan(0);
    for (const r of reads) expect(r.known).toEqual({ deployments: ['shop-blue', 'shop-green'], services: ['shop'] });
    expect(image(w.cluster.getDeployment('prod', 'shop-green'))).toBe(IMAGE_V2);
  });

  it('a change recorded while blue was live, then a switch to green the cache has not seen: it never reaches green', async () => {
    const w = world();
    await setImageOnLive(w, IMAGE_V2);
    // The switch lands in the cluster; the cache still has blue live and green idle.
    await w.cluster.patchService('prod', 'shop', { spec: { selector: { slot: 'green' } } }, 'merge');
    expect(w.store.view('prod', 'shop')!.live).toBe('blue');
    await w.reconciler.reconcile('prod', 'shop');
    expect(image(w.cluster.getDeployment('prod', 'shop-green'))).toBe(IMAGE_V1);
    const templatePatches = w.cluster.calls.filter(
      (c) => c.method === 'patchDeployment' && c.name === 'shop-green' && JSON.stringify(c.patch).includes('/spec/template'),
    );
    expect(templatePatches).toEqual([]);
  });

  it('an object gone since the cache saw it is left out of the read; with the watches failing, a LIST by label', async () => {
    const w = world();
    await setImageOnLive(w, IMAGE_V2);
    // Deleted in the cluster; the cache has not seen it go.
    w.cluster.deployments.delete('prod/shop-green');
    await w.reconciler.reconcile('prod', 'shop');
    const byName = w.cluster.calls.filter((c) => c.method === 'readApp');
    expect(byName.at(-1)!.known).toEqual({ deployments: ['shop-blue', 'shop-green'], services: ['shop'] });
    expect(JSON.parse(w.cluster.getDeployment('prod', 'shop-blue')!.metadata.annotations![LAST_CHANGE_ANNOTATION]!)).toMatchObject({
      applied: false,
      reason: 'app shop has no green Deployment to take it',
    });

    const v = world();
    await setImageOnLive(v, IMAGE_V2);
    v.store.watchingNow = () => false;
    await v.reconciler.reconcile('prod', 'shop');
    const reads = v.cluster.calls.filter((c) => c.method === 'readApp');
    expect(reads.length).toBeGreaterThan(0);
    for (const r of reads) expect(r.known).toBeUndefined();
    expect(image(v.cluster.getDeployment('prod', 'shop-green'))).toBe(IMAGE_V2);
  });
});

describe('isPatchTestFailure', () => {
  it.each([
    {
      name: "the API server's generic 422, the test in details.causes",
      e: new ApiError(422, '', 'the server rejected our request due to an error in our request', {
        details: { causes: [{ message: 'testing value /metadata/generation failed: test failed' }] },
      }),
      want: true,
    },
    { name: 'the words in the message', e: new ApiError(422, 'Invalid', 'testing value /spec/template/metadata/labels/slot failed', {}), want: true },
    {
      name: 'a validation error',
      e: new ApiError(422, 'Invalid', 'Deployment.apps "x" is invalid: spec.template.spec.containers[0].image: Required value', {}),
      want: false,
    },
    { name: 'a conflict is not a test failure', e: new ApiError(409, 'Conflict', 'the object has been modified', {}), want: false },
    { name: 'not an ApiError', e: new Error('test failed'), want: false },
  ])('$name -> $want', ({ e, want }) => expect(isPatchTestFailure(e)).toBe(want));
});

describe('LeaderElector over the fake', () => {
  it('one of two leads; when it stops it hands the Lease over at once', async () => {
    const cluster = new FakeCluster();
    let t = NOW.getTime();
    const now = () => new Date(t);
    const a = new LeaderElector({ cluster, namespace: 'kbg', name: 'lease', identity: 'a', log, retryMs: 10, now });
    const b = new LeaderElector({ cluster, namespace: 'kbg', name: 'lease', identity: 'b', log, retryMs: 10, now });
    a.start();
    await new Promise((r) => setTimeout(r, 30));
    b.start();
    await new Promise((r) => setTimeout(r, 50));
    expect([a.isLeader, b.isLeader]).toEqual([true, false]);
    await a.stop();
    t += 2000; // past the released Lease's 1 s
    await new Promise((r) => setTimeout(r, 50));
    expect([a.isLeader, b.isLeader]).toEqual([false, true]);
    await b.stop();
  });

  it('a holder that stops renewing is taken over once its Lease expires, not before', async () => {
    const cluster = new FakeCluster();
    let t = NOW.getTime();
    const now = () => new Date(t);
    await cluster.createLease('kbg', {
      metadata: { name: 'lease' },
      spec: { holderIdentity: 'dead', leaseDurationSeconds: 15, renewTime: now().toISOString() },
    });
    const b = new LeaderElector({ cluster, namespace: 'kbg', name: 'lease', identity: 'b', log, retryMs: 10, now });
    b.start();
    await new Promise((r) => setTimeout(r, 40));
    expect(b.isLeader).toBe(false);
    t += 16_000;
    await new Promise((r) => setTimeout(r, 40));
    expect(b.isLeader).toBe(true);
    expect((await cluster.getLease('kbg', 'lease'))!.spec!.leaseTransitions).toBe(1);
    await b.stop();
  });
});

describe('a planted record never needs the webhook to be up to be harmless', () => {
  it('decide refuses it at validate even when it copies a real record from another Deployment', () => {
    const s = shop();
    const realOnGreen = sealedRecord(s.green, { from: 'green', to: 'blue' });
    const d = decide('validate', deploymentUpdate(s.blue, annotated(s.blue, { [PENDING_CHANGE_ANNOTATION]: realOnGreen })), s.view, NOW, CTX);
    expect(d.outcome).toBe('denied');
    expect(edit(s.blue, () => {}).metadata.name).toBe('shop-blue');
    expect(selecting(s.svc, 'green').spec!.selector!.slot).toBe('green');
  });
});

describe('Reconciler: release gates (a pre-switch check run as a Job from the CronJob the app names)', () => {
  function gated(withCron = true) {
    const w = world({ shop: { idleImage: IMAGE_V2, serviceAnnotations: { [CHECK_TEMPLATE_ANNOTATION.pre]: 'shop-smoke' } } });
    if (withCron)
      w.cluster.cronJobs.set('prod/shop-smoke', {
        metadata: { name: 'shop-smoke' },
        spec: { jobTemplate: { spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 't', image: 'curl' }] } } } } },
      });
    return w;
  }

  it('starts the check once (record first, then the Job), records its pass, and the gate then lets the switch through', async () => {
    const w = gated();
    await w.reconciler.reconcile('prod', 'shop');
    expect([...w.cluster.jobs.keys()]).toHaveLength(1);
    const [jobKey] = [...w.cluster.jobs.keys()];
    const running = readCheck(w.cluster.getDeployment('prod', 'shop-green'), 'pre', SEAL);
    expect(running).toMatchObject({ state: 'running', job: jobKey!.split('/')[1] });
    // Again while the Job runs: nothing new.
    await w.reconciler.reconcile('prod', 'shop');
    expect(w.cluster.jobs.size).toBe(1);
    w.cluster.jobOutcomes.set(jobKey!, { state: 'succeeded' });
    await w.reconciler.reconcile('prod', 'shop');
    expect(readCheck(w.cluster.getDeployment('prod', 'shop-green'), 'pre', SEAL)).toMatchObject({ state: 'passed' });
    expect(w.cluster.events.map((e) => e.reason)).toEqual(['CheckStarted', 'CheckPassed']);
    w.sync();
    const view = w.store.view('prod', 'shop')!;
    const svc = view.active!;
    expect(decide('validate', serviceUpdate(svc, selecting(svc, 'green')), view, NOW, CTX)).toMatchObject({ allowed: true });
  });

  it('a failed Job: recorded as failed with its reason; the switch stays refused', async () => {
    const w = gated();
    await w.reconciler.reconcile('prod', 'shop');
    const [jobKey] = [...w.cluster.jobs.keys()];
    w.cluster.jobOutcomes.set(jobKey!, { state: 'failed', reason: 'BackoffLimitExceeded' });
    await w.reconciler.reconcile('prod', 'shop');
    w.sync();
    const view = w.store.view('prod', 'shop')!;
    const d = decide('validate', serviceUpdate(view.active!, selecting(view.active!, 'green')), view, NOW, CTX);
    expect(d.allowed).toBe(false);
    expect(!d.allowed && d.outcome === 'denied' && d.message).toContain('failed (BackoffLimitExceeded)');
  });

  it('a CronJob that does not exist: the check is recorded failed, saying so; no Job', async () => {
    const w = gated(false);
    await w.reconciler.reconcile('prod', 'shop');
    expect(w.cluster.jobs.size).toBe(0);
    expect(readCheck(w.cluster.getDeployment('prod', 'shop-green'), 'pre', SEAL)).toMatchObject({
      state: 'failed',
      reason: `CronJob shop-smoke (named by ${CHECK_TEMPLATE_ANNOTATION.pre}) does not exist`,
    });
  });
});

describe('Reconciler: the app’s HorizontalPodAutoscaler follows the live colour', () => {
  function hpaWorld(hpas: ReturnType<typeof hpa>[]) {
    const w = world();
    for (const h of hpas) w.cluster.put('hpa', h);
    const sync = () => {
      w.sync();
      w.store.replaceAll('hpa', [...w.cluster.hpas.values()]);
    };
    sync();
    return { ...w, sync };
  }
  const writes = (w: { cluster: FakeCluster }) => w.cluster.calls.filter((c) => c.method.startsWith('patch'));

  it('after a raw switch: the live labels move, then the HPA is pointed at the new live colour, with an Event on it', async () => {
    const w = hpaWorld([hpa({ target: 'shop-blue' })]);
    await w.cluster.patchService('prod', 'shop', { spec: { selector: { slot: 'green' } } }, 'merge');
    w.sync();
    await w.reconciler.reconcile('prod', 'shop');
    expect(w.cluster.getHpa('prod', 'shop')!.spec!.scaleTargetRef!.name).toBe('shop-green');
    expect(w.cluster.getDeployment('prod', 'shop-green')!.metadata.labels![LIVE_LABEL]).toBe('true');
    const ev = w.cluster.events.find((e) => e.reason === 'RetargetedToLive')!;
    expect(ev).toMatchObject({
      type: 'Normal',
      involvedObject: { kind: 'HorizontalPodAutoscaler', apiVersion: 'autoscaling/v2', name: 'shop', uid: 'uid-hpa-shop' },
    });
    expect(ev.message).toBe('now scales shop-green, the live colour (was shop-blue)');
  });

  it('the HPA scaled the live colour up: the idle colour is raised to the same count; the live colour is not written', async () => {
    const w = hpaWorld([hpa({ target: 'shop-blue', current: 5 })]);
    await w.cluster.patchDeployment('prod', 'shop-blue', { spec: { replicas: 5 } }, 'merge');
    w.sync();
    const blueRv = w.cluster.getDeployment('prod', 'shop-blue')!.metadata.resourceVersion;
    await w.reconciler.reconcile('prod', 'shop');
    expect(w.cluster.getDeployment('prod', 'shop-green')!.spec!.replicas).toBe(5);
    expect(w.cluster.getDeployment('prod', 'shop-blue')!.metadata.resourceVersion).toBe(blueRv);
    expect(w.cluster.events.map((e) => [e.involvedObject.name, e.reason, e.message])).toEqual([
      [
        'shop-green',
        'ScaledToLiveCount',
        'scaled from 2 to 5 replicas, as many as HorizontalPodAutoscaler shop runs the live colour at, so that it can take the load at the switch',
      ],
    ]);
    // Again (a resync): nothing more to do.
    w.sync();
    const before = writes(w).length;
    await w.reconciler.reconcile('prod', 'shop');
    expect(writes(w).length).toBe(before);
  });

  it('an HPA changed between the read and the retarget (a conflict): read again and retarget from the fresh read', async () => {
    const w = hpaWorld([hpa({ target: 'shop-blue' })]);
    await w.cluster.patchService('prod', 'shop', { spec: { selector: { slot: 'green' } } }, 'merge');
    w.sync();
    w.cluster.fail('patchHpa', new ApiError(409, 'Conflict', 'the object has been modified', {}));
    await w.reconciler.reconcile('prod', 'shop');
    expect(w.cluster.calls.filter((c) => c.method === 'patchHpa')).toHaveLength(2);
    expect(w.cluster.getHpa('prod', 'shop')!.spec!.scaleTargetRef!.name).toBe('shop-green');
  });

  it('one HPA per colour: nothing written, one Warning Event on each HPA, not repeated at the next pass', async () => {
    const w = hpaWorld([hpa({ target: 'shop-blue', current: 5 }), hpa({ name: 'shop-green', target: 'shop-green' })]);
    await w.cluster.patchDeployment('prod', 'shop-blue', { spec: { replicas: 5 } }, 'merge');
    w.sync();
    const before = writes(w).length;
    await w.reconciler.reconcile('prod', 'shop');
    await w.reconciler.reconcile('prod', 'shop');
    expect(writes(w).length).toBe(before);
    expect(w.cluster.events.map((e) => [e.involvedObject.kind, e.involvedObject.name, e.type, e.reason])).toEqual([
      ['HorizontalPodAutoscaler', 'shop', 'Warning', 'NotFollowed'],
      ['HorizontalPodAutoscaler', 'shop-green', 'Warning', 'NotFollowed'],
    ]);
    expect(w.cluster.events[0]!.message).toMatch(/^app shop has 2 HorizontalPodAutoscalers on its colours .*: delete shop-green /);
  });
});
