// handleAdmission (body in, AdmissionReview out) over a real EnrolledObjectStore,
// with a recording fake for the redirect side effect; and the store itself.
import { describe, expect, it } from 'vitest';
import type { AppView } from '../../../src/core/app.ts';
import type { Deployment, Service } from '../../../src/core/k8s-types.ts';
import type { RedirectEffect } from '../../../src/core/redirect.ts';
import { handleAdmission, type HandlerDeps } from '../../../src/webhook/admission-handler.ts';
import { EnrolledObjectStore } from '../../../src/webhook/cache.ts';
import { createLogger } from '../../../src/webhook/logger.ts';
import { createMetrics, type Metrics } from '../../../src/webhook/metrics.ts';
import type { RedirectResult } from '../../../src/webhook/redirect-executor.ts';
import {
  deployment,
  deploymentUpdate,
  edit,
  IMAGE_V2,
  NOW,
  review,
  selecting,
  service,
  serviceUpdate,
  shop,
  viewOf,
  withImage,
} from '../core/builders.ts';
import { type Fixture, loadFixture } from '../core/fixture-loader.ts';

type Call = { effect: RedirectEffect; liveUid: string | undefined };

function storeOf(deployments: Deployment[], services: Service[], synced = true): EnrolledObjectStore {
  const s = new EnrolledObjectStore();
  for (const d of deployments) s.upsert('deployment', d);
  for (const x of services) s.upsert('service', x);
  s.synced = synced;
  return s;
}

function harness(o: {
  store: EnrolledObjectStore;
  result?: RedirectResult;
  freshView?: HandlerDeps['freshView'];
}): { deps: HandlerDeps & { metrics: Metrics }; calls: Call[] } {
  const calls: Call[] = [];
  const deps = {
    cache: o.store,
    log: createLogger('silent'),
    metrics: createMetrics(),
    now: () => NOW,
    redirect: async (effect: RedirectEffect, liveUid: string | undefined) => {
      calls.push({ effect, liveUid });
      return o.result ?? { ok: true as const, attempts: 1 };
    },
    ...(o.freshView ? { freshView: o.freshView } : {}),
  };
  return { deps, calls };
}

function fromFixture(f: Fixture, o: { synced?: boolean; result?: RedirectResult } = {}) {
  return harness({ store: storeOf(f.cluster.deployments, f.cluster.services, o.synced ?? true), ...(o.result ? { result: o.result } : {}) });
}

const decodePatch = (b64: string | undefined) => (b64 === undefined ? undefined : JSON.parse(Buffer.from(b64, 'base64').toString('utf8')));
const counter = async (m: Metrics, name: keyof Metrics, labels: Record<string, string>) => {
  const metric = m[name] as { get(): Promise<{ values: { labels: Record<string, unknown>; value: number }[] }> };
  const v = (await metric.get()).values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value ?? 0;
};

const setImage = loadFixture('set-image-live.1.mutate.json');
const dryRun = loadFixture('set-image-live-dry-run.1.mutate.json');
const SET_IMAGE_WARNING = "image change redirected to shop-green (idle); run 'kubectl bg switch shop -n fixtures' when it is ready";

describe('handleAdmission: the redirect side effect', () => {
  it('a live set-image: redirect executed once, reverted object, warning, audit annotation', async () => {
    const { deps, calls } = fromFixture(setImage);
    const out = await handleAdmission('mutate', setImage.review, deps);
    const req = setImage.review.request;
    expect(calls).toHaveLength(1);
    expect(calls[0]!.liveUid).toBe((req.object as Deployment).metadata.uid);
    expect(calls[0]!.effect.idle).toEqual({ name: 'shop-green', colour: 'green' });
    expect(calls[0]!.effect.requestUid).toBe(req.uid);
    expect(out.status).toBe(200);
    expect(out.body.apiVersion).toBe('admission.k8s.io/v1');
    expect(out.body.kind).toBe('AdmissionReview');
    const { patch, ...rest } = out.body.response;
    expect(rest).toEqual({
      uid: req.uid,
      allowed: true,
      patchType: 'JSONPatch',
      auditAnnotations: { 'redirected-to': 'shop-green' },
      warnings: [SET_IMAGE_WARNING],
    });
    expect(decodePatch(patch)).toEqual([
      { op: 'replace', path: '/spec/template/spec/containers/0/image', value: 'registry.example/shop:v1' },
    ]);
    expect(await counter(deps.metrics, 'redirects', { result: 'done' })).toBe(1);
    expect(await counter(deps.metrics, 'decisions', { endpoint: 'mutate', outcome: 'redirected' })).toBe(1);
    expect(await counter(deps.metrics, 'requests', { endpoint: 'mutate', resource: 'deployments', operation: 'UPDATE' })).toBe(1);
  });

  it('dryRun: true: the redirect is NOT executed, the answer is the same', async () => {
    const { deps, calls } = fromFixture(dryRun);
    expect(dryRun.review.request.dryRun).toBe(true);
    const dry = await handleAdmission('mutate', dryRun.review, deps);
    expect(calls).toEqual([]);
    const wetBody = edit(dryRun.review, (r) => (r.request.dryRun = false));
    const wet = await handleAdmission('mutate', wetBody, deps);
    expect(calls).toHaveLength(1);
    expect(dry).toEqual(wet);
    expect(dry.body.response.warnings).toEqual([SET_IMAGE_WARNING, 'shop-green was running another version; this change replaces it']);
    expect(dry.body.response.allowed).toBe(true);
    expect(decodePatch(dry.body.response.patch)).toEqual([
      { op: 'replace', path: '/spec/template/spec/containers/0/image', value: 'registry.example/shop:v1' },
    ]);
    expect(await counter(deps.metrics, 'redirects', { result: 'dry-run' })).toBe(1);
  });

  it.each([
    { name: 'the user may not patch the idle colour', result: { ok: false, code: 403, reason: 'Forbidden', message: 'user alice may not patch deployment shop-green' } },
    { name: 'conflicts exhausted', result: { ok: false, code: 409, reason: 'Conflict', message: 'shop-green kept changing; run your command again' } },
    { name: 'the idle Deployment vanished', result: { ok: false, code: 404, reason: 'NotFound', message: 'shop-green is gone' } },
  ] as const)('a failing redirect ($name) becomes a denial with its message, nothing reaches the live colour', async ({ result }) => {
    const { deps, calls } = fromFixture(setImage, { result });
    const out = await handleAdmission('mutate', setImage.review, deps);
    expect(calls).toHaveLength(1);
    expect(out).toEqual({
      status: 200,
      body: {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        response: { uid: setImage.review.request.uid, allowed: false, status: { code: result.code, reason: result.reason, message: result.message } },
      },
    });
    expect(await counter(deps.metrics, 'redirects', { result: 'failed' })).toBe(1);
    expect(await counter(deps.metrics, 'decisions', { endpoint: 'mutate', outcome: 'denied' })).toBe(1);
  });

  it('the dry run of a redirect that would fail is still allowed (no side effect is tried)', async () => {
    const { deps, calls } = fromFixture(dryRun, { result: { ok: false, code: 403, reason: 'Forbidden', message: 'no' } });
    const out = await handleAdmission('mutate', dryRun.review, deps);
    expect(calls).toEqual([]);
    expect(out.body.response.allowed).toBe(true);
  });
});

describe('handleAdmission: answers', () => {
  it.each([
    { file: 'delete-live.1.validate.json', status: 200, allowed: false, code: 403 },
    { file: 'scale-live-0.1.validate.json', status: 200, allowed: false, code: 403 },
    { file: 'scale-live-5.1.validate.json', status: 200, allowed: true, code: undefined },
    { file: 'service-purple.1.validate.json', status: 200, allowed: false, code: 422 },
    { file: 'service-green-ready.1.validate.json', status: 200, allowed: true, code: undefined },
    { file: 'set-image-idle.1.mutate.json', status: 200, allowed: true, code: undefined },
    { file: 'patch-template-slot.1.mutate.json', status: 200, allowed: false, code: 422 },
  ])('$file -> allowed=$allowed $code', async ({ file, status, allowed, code }) => {
    const f = loadFixture(file);
    const { deps, calls } = fromFixture(f);
    const out = await handleAdmission(f.endpoint, f.review, deps);
    expect(out.status).toBe(status);
    expect(out.body.response.uid).toBe(f.review.request.uid);
    expect(out.body.response.allowed).toBe(allowed);
    expect(out.body.response.status?.code).toBe(code);
    if (!allowed) expect(f.kubectl.stderr).toContain(out.body.response.status!.message);
    expect(calls).toEqual([]);
  });

  it('the scale subresource finds its app through the cache (a Scale carries no labels)', async () => {
    const f = loadFixture('scale-live-0.1.validate.json');
    const { deps } = fromFixture(f);
    expect(deps.cache.appOfDeployment('fixtures', 'shop-blue')).toBe('shop');
    expect((await handleAdmission('validate', f.review, deps)).body.response.allowed).toBe(false);
    // The same request for a Deployment the cache does not know: not enrolled, allowed.
    const other = edit(f.review, (r) => (r.request.name = 'unrelated'));
    expect((await handleAdmission('validate', other, deps)).body.response).toEqual({ uid: f.review.request.uid, allowed: true });
  });

  it('not enrolled: allowed untouched', async () => {
    const { deps, calls } = harness({ store: storeOf([], []) });
    const d = edit(deployment({ colour: 'blue' }), (c) => delete c.metadata.labels!['bluegreen.io/app']);
    const out = await handleAdmission('mutate', review(deploymentUpdate(d, withImage(d, IMAGE_V2), { uid: 'u-ne' })), deps);
    expect(out).toEqual({ status: 200, body: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u-ne', allowed: true } } });
    expect(calls).toEqual([]);
    expect(await counter(deps.metrics, 'decisions', { endpoint: 'mutate', outcome: 'not-enrolled' })).toBe(1);
  });

  it('enrolled by label but unknown to the cache: treated as not enrolled', async () => {
    const { deps } = harness({ store: storeOf([], []) });
    const s = shop();
    const out = await handleAdmission('mutate', review(deploymentUpdate(s.blue, withImage(s.blue, IMAGE_V2), { uid: 'u-x' })), deps);
    expect(out.body.response).toEqual({ uid: 'u-x', allowed: true });
  });

  it('cache not synced and the request is for an enrolled app: 503, never a blind allow', async () => {
    const { deps, calls } = fromFixture(setImage, { synced: false });
    const out = await handleAdmission('mutate', setImage.review, deps);
    expect(out).toEqual({
      status: 503,
      body: {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        response: {
          uid: setImage.review.request.uid,
          allowed: false,
          status: { code: 503, reason: 'BadRequest', message: 'kube-bluegreen is starting and has not read the cluster yet; try again in a moment' },
        },
      },
    });
    expect(calls).toEqual([]);
  });

  it('cache not synced and the scale request names a Deployment it has filed: 503', async () => {
    const f = loadFixture('scale-live-0.1.validate.json');
    const { deps } = fromFixture(f, { synced: false });
    expect((await handleAdmission('validate', f.review, deps)).status).toBe(503);
  });

  it('cache not synced, request not enrolled: answered', async () => {
    const { deps } = harness({ store: storeOf([], [], false) });
    const d = edit(deployment({ colour: 'blue' }), (c) => delete c.metadata.labels);
    const out = await handleAdmission('mutate', review(deploymentUpdate(d, d, { uid: 'u-2' })), deps);
    expect(out.status).toBe(200);
    expect(out.body.response).toEqual({ uid: 'u-2', allowed: true });
  });

  it.each([
    { name: 'not an object', body: 'x', uid: '', message: 'malformed AdmissionReview: body is not a JSON object', reason: 'malformed' },
    { name: 'no uid', body: edit(setImage.review, (r) => delete (r.request as { uid?: string }).uid), uid: '', message: 'malformed AdmissionReview: request.uid is missing', reason: 'malformed' },
    {
      name: 'wrong apiVersion, uid readable',
      body: { ...setImage.review, apiVersion: 'admission.k8s.io/v1beta1' },
      uid: setImage.review.request.uid,
      message: 'malformed AdmissionReview: apiVersion must be admission.k8s.io/v1, got "admission.k8s.io/v1beta1"',
      reason: 'malformed',
    },
    {
      name: 'a ConfigMap',
      body: edit(setImage.review, (r) => {
        r.request.kind = { group: '', version: 'v1', kind: 'ConfigMap' };
        r.request.resource = { group: '', version: 'v1', resource: 'configmaps' };
      }),
      uid: setImage.review.request.uid,
      message: 'this webhook handles deployments, deployments/scale and services, not core/configmaps (ConfigMap)',
      reason: 'unexpected-kind',
    },
    {
      name: 'CONNECT',
      body: edit(setImage.review, (r) => (r.request.operation = 'CONNECT')),
      uid: setImage.review.request.uid,
      message: 'CONNECT requests are not handled',
      reason: 'unexpected',
    },
  ])('400 for $name, uid echoed when readable', async ({ body, uid, message, reason }) => {
    const { deps, calls } = fromFixture(setImage);
    const out = await handleAdmission('mutate', body, deps);
    expect(out).toEqual({
      status: 400,
      body: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed: false, status: { code: 400, reason: 'BadRequest', message } } },
    });
    expect(calls).toEqual([]);
    expect(await counter(deps.metrics, 'badRequests', { reason })).toBe(1);
  });
});

describe('handleAdmission: a fresh read for switches', () => {
  const s = shop();
  const unready = deployment({ colour: 'green', paused: true, resourceVersion: '102' });
  const body = review(serviceUpdate(s.svc, selecting(s.svc, 'green'), { uid: 'u-sw' }));

  it('a Service selector change at validate is decided on the fresh view, not the cache', async () => {
    const reads: string[] = [];
    const fresh: AppView = s.view;
    const { deps } = harness({
      store: storeOf([s.blue, unready], [s.svc]),
      freshView: async (ns, app) => {
        reads.push(`${ns}/${app}`);
        return fresh;
      },
    });
    const out = await handleAdmission('validate', body, deps);
    expect(reads).toEqual(['prod/shop']);
    expect(out.body.response).toEqual({ uid: 'u-sw', allowed: true });
  });

  it('without freshView the cache decides', async () => {
    const { deps } = harness({ store: storeOf([s.blue, unready], [s.svc]) });
    const out = await handleAdmission('validate', body, deps);
    expect(out.body.response.allowed).toBe(false);
    expect(out.body.response.status!.message).toMatch(/shop-green is paused/);
  });

  it.each([
    { name: 'at mutate', endpoint: 'mutate' as const, body },
    { name: 'selector unchanged', endpoint: 'validate' as const, body: review(serviceUpdate(s.svc, edit(s.svc, (c) => (c.metadata.annotations!.x = 'y')), { uid: 'u' })) },
    { name: 'a Deployment', endpoint: 'validate' as const, body: review(deploymentUpdate(s.green, s.green, { uid: 'u' })) },
  ])('no fresh read $name', async ({ endpoint, body: b }) => {
    let reads = 0;
    const { deps } = harness({
      store: storeOf([s.blue, s.green], [s.svc]),
      freshView: async () => {
        reads++;
        return s.view;
      },
    });
    await handleAdmission(endpoint, b, deps);
    expect(reads).toBe(0);
  });
});

describe('EnrolledObjectStore', () => {
  const blue = deployment({ colour: 'blue' });
  const green = deployment({ colour: 'green' });
  const svc = service({ role: 'active' });

  it('files objects by namespace and app and resolves the view', () => {
    const st = storeOf([blue, green], [svc]);
    expect(st.size).toBe(1);
    expect(st.view('prod', 'shop')).toEqual(viewOf([blue, green], [svc]));
    expect(st.view('prod', 'web')).toBeUndefined();
    expect(st.view('other', 'shop')).toBeUndefined();
    expect(st.appOfDeployment('prod', 'shop-blue')).toBe('shop');
    expect(st.appOfDeployment('prod', 'shop')).toBeUndefined(); // the Service of that name is not a Deployment
    expect([...st.apps()]).toEqual([{ namespace: 'prod', app: 'shop' }]);
  });

  it('an unlabelled object is not filed', () => {
    const st = storeOf([edit(blue, (c) => delete c.metadata.labels)], []);
    expect(st.size).toBe(0);
    expect(st.appOfDeployment('prod', 'shop-blue')).toBeUndefined();
  });

  it('the same names in two namespaces are two apps', () => {
    const st = storeOf([blue, deployment({ colour: 'blue', namespace: 'staging' })], []);
    expect(st.size).toBe(2);
    expect(st.view('staging', 'shop')!.deployments.blue!.metadata.namespace).toBe('staging');
  });

  it('an object whose app label changes moves apps', () => {
    const st = storeOf([blue, green], [svc]);
    const moved = edit(green, (c) => (c.metadata.labels!['bluegreen.io/app'] = 'web'));
    st.upsert('deployment', moved);
    expect(st.view('prod', 'shop')!.deployments).toEqual({ blue });
    expect(Object.keys(st.view('prod', 'web')!.deployments)).toEqual(['green']);
    expect(st.appOfDeployment('prod', 'shop-green')).toBe('web');
    expect(st.size).toBe(2);
  });

  it('an object losing its app label leaves; an app with nothing left disappears', () => {
    const st = storeOf([blue], []);
    st.upsert('deployment', edit(blue, (c) => delete c.metadata.labels!['bluegreen.io/app']));
    expect(st.size).toBe(0);
    expect(st.view('prod', 'shop')).toBeUndefined();
    expect(st.appOfDeployment('prod', 'shop-blue')).toBeUndefined();
  });

  it('remove', () => {
    const st = storeOf([blue, green], [svc]);
    st.remove('deployment', green);
    expect(Object.keys(st.view('prod', 'shop')!.deployments)).toEqual(['blue']);
    st.remove('deployment', green); // twice: no-op
    st.remove('service', svc);
    st.remove('deployment', blue);
    expect(st.size).toBe(0);
  });

  it('replaceAll forgets what the list no longer has, of that kind only', () => {
    const st = storeOf([blue, green], [svc]);
    const newer = edit(blue, (c) => (c.metadata.resourceVersion = '999'));
    st.replaceAll('deployment', [newer]);
    const v = st.view('prod', 'shop')!;
    expect(v.deployments).toEqual({ blue: newer });
    expect(v.active).toEqual(svc);
    st.replaceAll('service', []);
    expect(st.view('prod', 'shop')!.active).toBeUndefined();
    st.replaceAll('deployment', []);
    expect(st.size).toBe(0);
  });

  it('the view is memoised and invalidated by a change to the app', () => {
    const st = storeOf([blue, green], [svc]);
    const v1 = st.view('prod', 'shop');
    expect(st.view('prod', 'shop')).toBe(v1);
    st.upsert('deployment', deployment({ colour: 'other', app: 'web' })); // another app: no invalidation
    expect(st.view('prod', 'shop')).toBe(v1);
    st.upsert('service', selecting(svc, 'green'));
    const v2 = st.view('prod', 'shop');
    expect(v2).not.toBe(v1);
    expect(v2!.live).toBe('green');
    st.remove('deployment', green);
    expect(st.view('prod', 'shop')).not.toBe(v2);
  });

  it('onChange is told which app changed, until unsubscribed', () => {
    const st = new EnrolledObjectStore();
    const seen: string[] = [];
    const off = st.onChange((ns, app) => seen.push(`${ns}/${app}`));
    st.upsert('deployment', blue);
    st.upsert('deployment', edit(blue, (c) => (c.metadata.labels!['bluegreen.io/app'] = 'web')));
    off();
    st.upsert('deployment', green);
    expect(seen).toEqual(['prod/shop', 'prod/shop', 'prod/web']);
  });

  it('synced starts false', () => {
    expect(new EnrolledObjectStore().synced).toBe(false);
  });
});
