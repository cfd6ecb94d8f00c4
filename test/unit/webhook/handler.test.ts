// handleAdmission (body in, AdmissionReview out) over a real EnrolledObjectStore,
// with the in-memory FakeCluster for the checks a redirect makes and for fresh
// reads; and the store itself.
import { describe, expect, it } from 'vitest';
import type { Deployment, Service } from '../../../src/core/k8s-types.ts';
import { PENDING_CHANGE_ANNOTATION } from '../../../src/core/labels.ts';
import { templateHash } from '../../../src/core/template.ts';
import { ApiError } from '../../../src/kube/errors.ts';
import { handleAdmission, type HandlerDeps } from '../../../src/webhook/admission-handler.ts';
import { EnrolledObjectStore, knownObjects, slimObject } from '../../../src/webhook/cache.ts';
import { createLogger } from '../../../src/webhook/logger.ts';
import { createMetrics, type Metrics } from '../../../src/webhook/metrics.ts';
import { PassedChecks } from '../../../src/webhook/redirect-checks.ts';
import { FakeCluster } from './fake-cluster.ts';
import {
  CTX,
  deployment,
  deploymentUpdate,
  edit,
  hpa,
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

function storeOf(deployments: Deployment[], services: Service[], synced = true): EnrolledObjectStore {
  const s = new EnrolledObjectStore();
  for (const d of deployments) s.upsert('deployment', d);
  for (const x of services) s.upsert('service', x);
  s.synced = synced;
  return s;
}

/** A FakeCluster holding these objects (what a fresh read and the checks see). */
function clusterOf(deployments: Deployment[], services: Service[]): FakeCluster {
  const c = new FakeCluster();
  for (const d of deployments) c.put('deployment', d);
  for (const x of services) c.put('service', x);
  return c;
}

function harness(o: { store: EnrolledObjectStore; cluster?: FakeCluster | null }): { deps: HandlerDeps & { metrics: Metrics }; cluster: FakeCluster } {
  const cluster = o.cluster ?? new FakeCluster();
  const deps = {
    cache: o.store,
    log: createLogger('silent'),
    metrics: createMetrics(),
    now: () => NOW,
    admission: CTX,
    ...(o.cluster === null ? {} : { cluster }),
  };
  return { deps, cluster };
}

function fromFixture(f: Fixture, o: { synced?: boolean } = {}) {
  return harness({
    store: storeOf(f.cluster.deployments, f.cluster.services, o.synced ?? true),
    cluster: clusterOf(f.cluster.deployments, f.cluster.services),
  });
}

const slim = (d: Deployment) => slimObject('deployment', d);

/** Calls that write (dry runs do not count). */
const writes = (c: FakeCluster) =>
  c.calls.filter((x) => (x.method === 'patchDeployment' || x.method === 'patchService' || x.method === 'createEvent') && !x.dryRun);

const decodePatch = (b64: string | undefined) => (b64 === undefined ? undefined : JSON.parse(Buffer.from(b64, 'base64').toString('utf8')));
const counter = async (m: Metrics, name: keyof Metrics, labels: Record<string, string>) => {
  const metric = m[name] as { get(): Promise<{ values: { labels: Record<string, unknown>; value: number }[] }> };
  const v = (await metric.get()).values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value ?? 0;
};

const setImage = loadFixture('set-image-live.1.mutate.json');
const dryRun = loadFixture('set-image-live-dry-run.1.mutate.json');
const SET_IMAGE_WARNING = "image change redirected to shop-green (idle); run 'kubectl bg switch shop -n fixtures' when it is ready";

describe('handleAdmission: a redirect writes nothing; it checks, then patches the request', () => {
  it('a live set-image: SAR and dry run of the idle patch (reads only), reverted object with the record, warning, audit annotation', async () => {
    const { deps, cluster } = fromFixture(setImage);
    const out = await handleAdmission('mutate', setImage.review, deps);
    const req = setImage.review.request;
    expect(cluster.calls.map((c) => `${c.method} ${c.name}${c.dryRun ? ' (dry run)' : ''}`).sort()).toEqual([
      'mayPatchDeployment shop-green',
      'patchDeployment shop-green (dry run)',
    ]);
    expect(writes(cluster)).toEqual([]);
    expect(cluster.getDeployment('fixtures', 'shop-green')!.spec!.template!.spec!.containers![0]!.image).toBe('registry.example/shop:v1');
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
    const ops = decodePatch(patch) as { op: string; path: string; value: unknown }[];
    expect(ops[0]).toEqual({ op: 'replace', path: '/spec/template/spec/containers/0/image', value: 'registry.example/shop:v1' });
    expect(ops[1]!.path).toBe('/metadata/annotations/bluegreen.io~1pending-change');
    expect(CTX.seal.open(ops[1]!.value as string)).toMatchObject({ request: req.uid, to: 'green', from: 'blue' });
    expect(await counter(deps.metrics, 'redirects', { result: 'recorded' })).toBe(1);
    expect(await counter(deps.metrics, 'decisions', { endpoint: 'mutate', outcome: 'redirected' })).toBe(1);
    expect(await counter(deps.metrics, 'requests', { endpoint: 'mutate', resource: 'deployments', operation: 'UPDATE' })).toBe(1);
  });

  it('dryRun: true: the same checks and the same answer', async () => {
    const { deps, cluster } = fromFixture(dryRun);
    expect(dryRun.review.request.dryRun).toBe(true);
    const dry = await handleAdmission('mutate', dryRun.review, deps);
    const wet = await handleAdmission(
      'mutate',
      edit(dryRun.review, (r) => (r.request.dryRun = false)),
      deps,
    );
    expect(dry).toEqual(wet);
    expect(writes(cluster)).toEqual([]);
    expect(dry.body.response.warnings).toEqual([SET_IMAGE_WARNING, 'shop-green was running another version; this change replaces it']);
    expect(await counter(deps.metrics, 'redirects', { result: 'dry-run' })).toBe(1);
  });

  it.each([
    {
      name: 'the user may not patch the idle colour',
      arrange: (c: FakeCluster) => (c.mayPatch = () => false),
      code: 403,
      message:
        /^shop-blue is the live colour of app shop, so this image change has to go to shop-green \(idle\), and user "kubernetes-admin" may not patch deployment shop-green in namespace fixtures\. Nothing was changed/,
    },
    {
      name: 'the idle Deployment would refuse the template',
      arrange: (c: FakeCluster) => (c.validate = () => 'spec.template.spec.containers[0].image: Invalid value'),
      code: 422,
      message:
        /^this image change was to go to shop-green \(idle\), which would not accept it: Deployment\.apps "shop-green" is invalid: spec\.template\.spec\.containers\[0\]\.image: Invalid value\. Nothing was changed: shop-blue \(live\) keeps its template$/,
    },
    {
      name: 'the idle Deployment vanished',
      arrange: (c: FakeCluster) => c.deployments.delete('fixtures/shop-green'),
      code: 409,
      message: /^shop-green, the idle colour of app shop, is gone\. Nothing was changed/,
    },
    {
      name: 'the SubjectAccessReview fails',
      arrange: (c: FakeCluster) => c.fail('mayPatchDeployment', new ApiError(503, 'ServiceUnavailable', 'etcd is down', {})),
      code: 500,
      message: /^could not ask whether you may change it for shop-green \(idle\): 503 etcd is down\. Nothing was changed/,
    },
    {
      name: 'the checks outlast the deadline',
      arrange: (c: FakeCluster) => c.fail('patchDeployment', 'hang'),
      code: 504,
      message: /^could not check in time whether shop-green \(idle\) takes this image change\. Nothing was changed/,
      timeoutMs: 600,
    },
  ])('a failing check ($name) is a denial with its reason; nothing is recorded or written', async ({ arrange, code, message, timeoutMs }) => {
    const { deps, cluster } = fromFixture(setImage);
    arrange(cluster);
    const t0 = Date.now();
    const out = await handleAdmission('mutate', setImage.review, deps, timeoutMs ? { timeoutMs } : {});
    if (timeoutMs) expect(Date.now() - t0).toBeLessThan(timeoutMs);
    expect(out.status).toBe(200);
    expect(out.body.response.allowed).toBe(false);
    expect(out.body.response.patch).toBeUndefined();
    expect(out.body.response.status!.code).toBe(code);
    expect(out.body.response.status!.message).toMatch(message);
    expect(writes(cluster)).toEqual([]);
    expect(await counter(deps.metrics, 'redirects', { result: 'refused' })).toBe(1);
    expect(await counter(deps.metrics, 'decisions', { endpoint: 'mutate', outcome: 'denied' })).toBe(1);
  });

  it("the API server's retry of the same request is not checked twice; a refusal is asked again", async () => {
    const { deps, cluster } = fromFixture(setImage);
    const withCache = { ...deps, passedChecks: new PassedChecks(5_000) };
    await handleAdmission('mutate', setImage.review, withCache);
    await handleAdmission('mutate', setImage.review, withCache);
    expect(cluster.calls.filter((c) => c.method === 'mayPatchDeployment')).toHaveLength(1);
    cluster.mayPatch = () => false;
    const other = edit(setImage.review, (r) => ((r.request.object as Deployment).spec!.template!.spec!.containers![0]!.image = 'registry.example/shop:v9'));
    for (let i = 0; i < 2; i++) expect((await handleAdmission('mutate', other, withCache)).body.response.allowed).toBe(false);
    expect(cluster.calls.filter((c) => c.method === 'mayPatchDeployment')).toHaveLength(3);
  });

  it('without a cluster connection a redirect is refused (nothing can be checked)', async () => {
    const { deps } = harness({ store: storeOf(setImage.cluster.deployments, setImage.cluster.services), cluster: null });
    const out = await handleAdmission('mutate', setImage.review, deps);
    expect(out.body.response.allowed).toBe(false);
    expect(out.body.response.status!.message).toMatch(/no cluster connection/);
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
    const { deps, cluster } = fromFixture(f);
    const out = await handleAdmission(f.endpoint, f.review, deps);
    expect(out.status).toBe(status);
    expect(out.body.response.uid).toBe(f.review.request.uid);
    expect(out.body.response.allowed).toBe(allowed);
    expect(out.body.response.status?.code).toBe(code);
    if (!allowed) expect(f.kubectl.stderr).toContain(out.body.response.status!.message);
    expect(writes(cluster)).toEqual([]);
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
    const { deps, cluster } = harness({ store: storeOf([], []) });
    const d = edit(deployment({ colour: 'blue' }), (c) => delete c.metadata.labels!['bluegreen.io/app']);
    const out = await handleAdmission('mutate', review(deploymentUpdate(d, withImage(d, IMAGE_V2), { uid: 'u-ne' })), deps);
    expect(out).toEqual({ status: 200, body: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u-ne', allowed: true } } });
    expect(writes(cluster)).toEqual([]);
    expect(await counter(deps.metrics, 'decisions', { endpoint: 'mutate', outcome: 'not-enrolled' })).toBe(1);
  });

  it('enrolled by label but unknown to the cache: treated as not enrolled', async () => {
    const { deps } = harness({ store: storeOf([], []) });
    const s = shop();
    const out = await handleAdmission('mutate', review(deploymentUpdate(s.blue, withImage(s.blue, IMAGE_V2), { uid: 'u-x' })), deps);
    expect(out.body.response).toEqual({ uid: 'u-x', allowed: true });
  });

  it('cache not synced and the request is for an enrolled app: 503, never a blind allow', async () => {
    const { deps, cluster } = fromFixture(setImage, { synced: false });
    const out = await handleAdmission('mutate', setImage.review, deps);
    expect(out).toEqual({
      status: 503,
      body: {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        response: {
          uid: setImage.review.request.uid,
          allowed: false,
          status: { code: 503, reason: 'ServiceUnavailable', message: 'kube-bluegreen is starting and has not read the cluster yet; try again in a moment' },
        },
      },
    });
    expect(writes(cluster)).toEqual([]);
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
    {
      name: 'no uid',
      body: edit(setImage.review, (r) => delete (r.request as { uid?: string }).uid),
      uid: '',
      message: 'malformed AdmissionReview: request.uid is missing',
      reason: 'malformed',
    },
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
    const { deps, cluster } = fromFixture(setImage);
    const out = await handleAdmission('mutate', body, deps);
    expect(out).toEqual({
      status: 400,
      body: {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        response: { uid, allowed: false, status: { code: 400, reason: 'BadRequest', message } },
      },
    });
    expect(writes(cluster)).toEqual([]);
    expect(await counter(deps.metrics, 'badRequests', { reason })).toBe(1);
  });
});

describe('handleAdmission: fresh reads where the cache must not decide alone', () => {
  const s = shop();
  const unready = deployment({ colour: 'green', paused: true, resourceVersion: '102' });
  const body = review(serviceUpdate(s.svc, selecting(s.svc, 'green'), { uid: 'u-sw' }));

  it('a Service selector change at validate is decided on the fresh view, not the cache', async () => {
    const { deps, cluster } = harness({ store: storeOf([s.blue, unready], [s.svc]), cluster: clusterOf([s.blue, s.green], [s.svc]) });
    const out = await handleAdmission('validate', body, deps);
    expect(cluster.calls.map((c) => `${c.method} ${c.namespace}/${c.name}`)).toEqual(['readApp prod/shop']);
    expect(out.body.response).toEqual({ uid: 'u-sw', allowed: true });
  });

  it('the fresh read is a GET of each object the cache files under the app; a LIST by label while the watches fail', async () => {
    const { deps, cluster } = harness({ store: storeOf([s.blue, unready], [s.svc]), cluster: clusterOf([s.blue, s.green], [s.svc]) });
    await handleAdmission('validate', body, deps);
    expect(cluster.calls.map((c) => c.known)).toEqual([{ deployments: ['shop-blue', 'shop-green'], services: ['shop'] }]);
    const failing = storeOf([s.blue, unready], [s.svc]);
    failing.watchingNow = () => false;
    const h = harness({ store: failing, cluster: clusterOf([s.blue, s.green], [s.svc]) });
    const out = await handleAdmission('validate', body, h.deps);
    expect(h.cluster.calls.map((c) => `${c.method} ${c.namespace}/${c.name} ${c.known === undefined ? 'by label' : 'by name'}`)).toEqual([
      'readApp prod/shop by label',
    ]);
    expect(out.body.response).toEqual({ uid: 'u-sw', allowed: true });
  });

  it('a switch to a colour whose change is still pending (seen fresh) is refused', async () => {
    const pendingBlue = edit(s.blue, (c) => (c.metadata.annotations = { [PENDING_CHANGE_ANNOTATION]: '{"v":1}' }));
    const { deps } = harness({ store: storeOf([s.blue, s.green], [s.svc]), cluster: clusterOf([pendingBlue, s.green], [s.svc]) });
    const out = await handleAdmission('validate', body, deps);
    expect(out.body.response.allowed).toBe(false);
    expect(out.body.response.status!.message).toMatch(/a redirected change recorded on shop-blue has not reached shop-green yet/);
  });

  it('a template change of the colour the cache calls idle is checked fresh: made live a moment ago, it is refused', async () => {
    const switched = selecting(s.svc, 'green');
    const { deps } = harness({ store: storeOf([s.blue, s.green], [s.svc]), cluster: clusterOf([s.blue, s.green], [switched]) });
    const out = await handleAdmission('validate', review(deploymentUpdate(s.green, withImage(s.green, IMAGE_V2), { uid: 'u-g' })), deps);
    expect(out.body.response.allowed).toBe(false);
    expect(out.body.response.status!.message).toMatch(/^the pod template of shop-green, the live colour of app shop, cannot change in place/);
  });

  it('scaling to 0 is checked fresh too', async () => {
    const switched = selecting(s.svc, 'green');
    const { deps } = harness({ store: storeOf([s.blue, s.green], [s.svc]), cluster: clusterOf([s.blue, s.green], [switched]) });
    const zero = edit(s.green, (c) => (c.spec!.replicas = 0));
    const out = await handleAdmission('validate', review(deploymentUpdate(s.green, zero, { uid: 'u-z' })), deps);
    expect(out.body.response.allowed).toBe(false);
    expect(out.body.response.status!.message).toMatch(/scaling it to 0 would take the app down/);
  });

  it('a fresh read that fails is a denial that says so, never an allow', async () => {
    const { deps, cluster } = harness({ store: storeOf([s.blue, s.green], [s.svc]), cluster: clusterOf([s.blue, s.green], [s.svc]) });
    cluster.fail('readApp', new Error('connection refused'));
    const out = await handleAdmission('validate', body, deps);
    expect(out.body.response.allowed).toBe(false);
    expect(out.body.response.status).toEqual({
      code: 500,
      reason: 'InternalError',
      message: 'could not read app shop afresh to check this change: connection refused; nothing was changed. Run your command again',
    });
  });

  it('without a cluster the cache decides', async () => {
    const { deps } = harness({ store: storeOf([s.blue, unready], [s.svc]), cluster: null });
    const out = await handleAdmission('validate', body, deps);
    expect(out.body.response.allowed).toBe(false);
    expect(out.body.response.status!.message).toMatch(/shop-green is paused/);
  });

  it.each([
    { name: 'at mutate', endpoint: 'mutate' as const, body },
    {
      name: 'selector unchanged',
      endpoint: 'validate' as const,
      body: review(
        serviceUpdate(
          s.svc,
          edit(s.svc, (c) => (c.metadata.annotations!.x = 'y')),
          { uid: 'u' },
        ),
      ),
    },
    { name: 'a Deployment with no template or replicas change', endpoint: 'validate' as const, body: review(deploymentUpdate(s.green, s.green, { uid: 'u' })) },
    {
      name: 'a dry run of an idle template change (the checks of a redirect)',
      endpoint: 'validate' as const,
      body: review(deploymentUpdate(s.green, withImage(s.green, IMAGE_V2), { uid: 'u', dryRun: true })),
    },
  ])('no fresh read $name', async ({ endpoint, body: b }) => {
    const { deps, cluster } = harness({ store: storeOf([s.blue, s.green], [s.svc]), cluster: clusterOf([s.blue, s.green], [s.svc]) });
    await handleAdmission(endpoint, b, deps);
    expect(cluster.calls.filter((c) => c.method === 'readApp')).toEqual([]);
  });
});

describe('slimObject: the cache keeps only what the decisions read', () => {
  it('drops managedFields, foreign annotations (last-applied-configuration), status conditions; of a Service all but the selector', () => {
    const d = edit(
      deployment({ colour: 'blue', annotations: { [PENDING_CHANGE_ANNOTATION]: 'r', 'kubectl.kubernetes.io/last-applied-configuration': '{"big":1}' } }),
      (c) => {
        (c.metadata as Record<string, unknown>).managedFields = [{ manager: 'kubectl' }];
        c.spec!.strategy = { type: 'RollingUpdate' };
        c.status!.conditions = [{ type: 'Available', status: 'True', message: 'long text' }];
      },
    );
    const sl = slimObject('deployment', d);
    const { name, namespace, uid, resourceVersion, generation, labels } = d.metadata;
    expect(sl.metadata).toEqual({ name, namespace, uid, resourceVersion, generation, labels, annotations: { [PENDING_CHANGE_ANNOTATION]: 'r' } });
    // The template: its labels, and its fingerprint for each label that could be the slot key.
    expect(sl.spec).toEqual({ replicas: d.spec!.replicas, selector: d.spec!.selector, template: { metadata: { labels: d.spec!.template!.metadata!.labels } } });
    expect(templateHash(sl.spec!.template, 'slot')).toBe(templateHash(d.spec!.template, 'slot'));
    expect(templateHash(sl.spec!.template, 'environment')).not.toBe(templateHash(d.spec!.template, 'environment'));
    expect(sl.status!.conditions).toBeUndefined();
    expect(sl.status!.availableReplicas).toBe(d.status!.availableReplicas);
    const svc = edit(service({ role: 'active' }), (c) => (c.spec!.ports = [{ port: 80 }]));
    expect(slimObject('service', svc)).toEqual({ metadata: svc.metadata, spec: { selector: svc.spec!.selector } });
  });
});

describe('EnrolledObjectStore', () => {
  const blue = deployment({ colour: 'blue' });
  const green = deployment({ colour: 'green' });
  const svc = service({ role: 'active' });

  it('files objects by namespace and app and resolves the view', () => {
    const st = storeOf([blue, green], [svc]);
    expect(st.size).toBe(1);
    expect(st.view('prod', 'shop')).toEqual(viewOf([slim(blue), slim(green)], [slimObject('service', svc)]));
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
    expect(st.view('prod', 'shop')!.deployments).toEqual({ blue: slim(blue) });
    expect(Object.keys(st.view('prod', 'web')!.deployments)).toEqual(['green']);
    expect(st.appOfDeployment('prod', 'shop-green')).toBe('web');
    expect(st.size).toBe(2);
  });

  it('an object losing its app label leaves; an app with nothing left disappears', () => {
    const st = storeOf([blue], []);
    st.upsert(
      'deployment',
      edit(blue, (c) => delete c.metadata.labels!['bluegreen.io/app']),
    );
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
    expect(v.deployments).toEqual({ blue: slim(newer) });
    expect(v.active).toEqual(slimObject('service', svc));
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
    st.upsert(
      'deployment',
      edit(blue, (c) => (c.metadata.labels!['bluegreen.io/app'] = 'web')),
    );
    off();
    st.upsert('deployment', green);
    expect(seen).toEqual(['prod/shop', 'prod/shop', 'prod/web']);
  });

  it('synced starts false', () => {
    expect(new EnrolledObjectStore().synced).toBe(false);
  });

  it('files an HPA labelled for the app under it, keeping what it scales, its bounds and its replicas; knownObjects names it for the fresh read', () => {
    const st = storeOf([blue, green], [svc]);
    const h = { ...hpa({ target: 'shop-blue', current: 4 }), metadata: { ...hpa({ target: 'shop-blue' }).metadata, managedFields: [{ manager: 'kubectl' }] } };
    st.upsert('hpa', h);
    const kept = st.view('prod', 'shop')!.hpas;
    expect(kept).toEqual([
      {
        metadata: { name: 'shop', namespace: 'prod', uid: 'uid-hpa-shop', resourceVersion: '300', labels: { 'bluegreen.io/app': 'shop' } },
        spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'shop-blue' }, minReplicas: 2, maxReplicas: 10 },
        status: { currentReplicas: 4, desiredReplicas: 4 },
      },
    ]);
    expect(knownObjects(st, 'prod', 'shop')).toEqual({ deployments: ['shop-blue', 'shop-green'], services: ['shop'], hpas: ['shop'] });
    st.remove('hpa', h);
    expect(st.view('prod', 'shop')!.hpas).toEqual([]);
    expect(knownObjects(st, 'prod', 'shop')).toEqual({ deployments: ['shop-blue', 'shop-green'], services: ['shop'] });
  });
});
