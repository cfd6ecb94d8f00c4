// decide(): every row of PRODUCT.md's "What the webhook does" table, and the
// edges around them, as named cases built from small builders.
import fjp from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import type { AppView } from '../../../src/core/app.ts';
import { decide, type Decision, type Endpoint, requestApp, requestTarget } from '../../../src/core/admission/decide.ts';
import type { AdmissionRequest } from '../../../src/core/admission/review.ts';
import type { Deployment } from '../../../src/core/k8s-types.ts';
import {
  FORCE_SWITCH_ANNOTATION,
  LAST_CHANGE_ANNOTATION,
  PENDING_CHANGE_ANNOTATION,
  RESTARTED_AT_ANNOTATION,
  ROLE_ANNOTATION,
  SLOT_LABEL_ANNOTATION,
} from '../../../src/core/labels.ts';
import { annotationPath, type PendingChange } from '../../../src/core/pending-change.ts';
import { templateHash } from '../../../src/core/template.ts';
import {
  ADMIN,
  CTX,
  recordFields,
  SEAL,
  sealedRecord,
  SELF,
  annotated,
  deployment,
  deploymentCreate,
  deploymentDelete,
  deploymentUpdate,
  edit,
  IMAGE_V1,
  IMAGE_V2,
  NOW,
  scaleUpdate,
  selecting,
  service,
  serviceCreate,
  serviceDelete,
  serviceUpdate,
  shop,
  viewOf,
  withImage,
  withReplicas,
  denied,
} from './builders.ts';

const SWITCH_HINT = "run 'kubectl bg switch shop -n prod' when it is ready";
const ALLOWED: Decision = { allowed: true, outcome: 'allowed', warnings: [] };

function redirected(d: Decision): Extract<Decision, { allowed: true }> {
  if (d.outcome !== 'redirected') throw new Error(`expected a redirect, got ${d.outcome}: ${JSON.stringify(d)}`);
  return d;
}
/** The part of a redirect's patch that restores the live template. */
function revertOps(d: Extract<Decision, { allowed: true }>) {
  return d.patch!.filter((op) => !op.path.startsWith('/metadata/annotations'));
}
/** The pending-change record a redirect's patch writes, opened with the test seal. */
function recordOf(d: Extract<Decision, { allowed: true }>): PendingChange {
  const op = d.patch!.find((o) => o.path.startsWith('/metadata/annotations')) as { path: string; value: unknown } | undefined;
  if (!op) throw new Error('the patch writes no record');
  const value = op.path === '/metadata/annotations' ? (op.value as Record<string, string>)[PENDING_CHANGE_ANNOTATION] : (op.value as string);
  expect(op.path === '/metadata/annotations' || op.path === annotationPath(PENDING_CHANGE_ANNOTATION)).toBe(true);
  const r = SEAL.open(value!);
  if (!r) throw new Error('the record does not open with the seal');
  return r;
}
/** The request object as the API server stores it after the patch. */
function applied<T>(obj: T, d: Extract<Decision, { allowed: true }>): T {
  return fjp.applyPatch(structuredClone(obj), d.patch!, true, false).newDocument;
}

describe('UPDATE of the live colour that changes its pod template: redirected to the idle colour', () => {
  const { blue, green, view } = shop();

  it('set image: the live object keeps its template and records the change; the check names the idle colour', () => {
    const req = deploymentUpdate(blue, withImage(blue, IMAGE_V2), { uid: 'uid-1' });
    const d = redirected(decide('mutate', req, view, NOW, CTX));
    expect(d.allowed).toBe(true);
    expect(revertOps(d)).toEqual([{ op: 'replace', path: '/spec/template/spec/containers/0/image', value: IMAGE_V1 }]);
    expect(d.warnings).toEqual([`image change redirected to shop-green (idle); ${SWITCH_HINT}`]);
    const requested = withImage(blue, IMAGE_V2).spec!.template!;
    expect(recordOf(d)).toEqual({
      v: 1,
      template: requested,
      hash: templateHash(requested, 'slot'),
      bases: { blue: templateHash(blue.spec!.template, 'slot'), green: templateHash(green.spec!.template, 'slot') },
      from: 'blue',
      to: 'green',
      minReplicas: 2,
      summary: 'image change',
      by: 'alice',
      request: 'uid-1',
      at: NOW.toISOString(),
      deployment: blue.metadata.uid,
      base: blue.metadata.resourceVersion,
    });
    const template = withImage(green, IMAGE_V2).spec!.template!;
    expect(d.check).toEqual({
      namespace: 'prod',
      app: 'shop',
      live: { name: 'shop-blue', colour: 'blue' },
      idle: { name: 'shop-green', colour: 'green' },
      idleOps: [
        { op: 'test', path: '/spec/template/metadata/labels/slot', value: 'green' },
        { op: 'replace', path: '/spec/template', value: template },
      ],
      summary: 'image change',
      user: ADMIN,
    });
  });

  it('the stored live object is the old one plus the record, nothing else', () => {
    const newD = withImage(blue, IMAGE_V2);
    const d = redirected(decide('mutate', deploymentUpdate(blue, newD), view, NOW, CTX));
    const stored = applied(newD, d);
    const { [PENDING_CHANGE_ANNOTATION]: rec, ...rest } = stored.metadata.annotations ?? {};
    expect(rec).toBeDefined();
    expect({ ...stored, metadata: { ...stored.metadata, annotations: rest } }).toEqual({ ...blue, metadata: { ...blue.metadata, annotations: {} } });
  });

  it('a record that would take the annotations past 256 KiB is refused, with what to do instead', () => {
    const big = edit(withImage(blue, IMAGE_V2), (c) => (c.spec!.template!.spec!.containers![0]!.env = [{ name: 'BIG', value: 'x'.repeat(270_000) }]));
    const d = denied(decide('mutate', deploymentUpdate(blue, big), view, NOW, CTX));
    expect(d.code).toBe(422);
    expect(d.message).toMatch(
      /^this pod template change to shop-blue \(live\) is too large to record for shop-green \(idle\).*Apply it to shop-green directly/,
    );
  });

  it('the input objects are not modified', () => {
    const newD = withImage(blue, IMAGE_V2);
    const req = deploymentUpdate(blue, newD);
    const before = structuredClone(req);
    const viewBefore = structuredClone(view);
    decide('mutate', req, view, NOW, CTX);
    expect(req).toEqual(before);
    expect(view).toEqual(viewBefore);
  });

  it.each([
    { name: 'replicas raised with the image', from: 2, to: 4, min: 4 },
    { name: 'replicas lowered with the image', from: 2, to: 1, min: 1 },
    { name: 'replicas unchanged', from: 2, to: 2, min: 2 },
  ])('$name: the idle colour is raised to at least $min (record.minReplicas), the live keeps the new count', ({ to, min }) => {
    const newD = withReplicas(withImage(blue, IMAGE_V2), to);
    const d = redirected(decide('mutate', deploymentUpdate(blue, newD), view, NOW, CTX));
    expect(recordOf(d).minReplicas).toBe(min);
    expect(d.check!.idleOps.some((op) => op.path === '/spec/replicas')).toBe(min > 2);
    const patched = applied(newD, d);
    expect(patched.spec!.replicas).toBe(to);
    expect(patched.spec!.template).toEqual(blue.spec!.template);
  });

  it.each([
    {
      name: 'set env',
      change: (c: Deployment) => (c.spec!.template!.spec!.containers![0]!.env = [{ name: 'GREETING', value: 'hi' }]),
      summary: 'pod template change',
    },
    {
      name: 'resources',
      change: (c: Deployment) => (c.spec!.template!.spec!.containers![0]!.resources = { limits: { cpu: '1' } }),
      summary: 'pod template change',
    },
    {
      name: 'image and env together',
      change: (c: Deployment) => {
        c.spec!.template!.spec!.containers![0]!.image = IMAGE_V2;
        c.spec!.template!.spec!.containers![0]!.env = [];
      },
      summary: 'pod template change',
    },
    {
      name: 'an init container added',
      change: (c: Deployment) => (c.spec!.template!.spec!.initContainers = [{ name: 'init', image: 'busybox:2' }]),
      summary: 'pod template change',
    },
    {
      name: 'a template label other than slot and app',
      change: (c: Deployment) => (c.spec!.template!.metadata!.labels!.tier = 'web'),
      summary: 'pod template change',
    },
    {
      name: 'rollout restart together with an image',
      change: (c: Deployment) => {
        c.spec!.template!.metadata!.annotations = { [RESTARTED_AT_ANNOTATION]: '2030-01-01T00:00:00Z' };
        c.spec!.template!.spec!.containers![0]!.image = IMAGE_V2;
      },
      summary: 'image change',
    },
  ])('$name -> redirected as "$summary"', ({ change, summary }) => {
    const d = redirected(decide('mutate', deploymentUpdate(blue, edit(blue, change)), view, NOW, CTX));
    expect(recordOf(d).summary).toBe(summary);
    expect(d.warnings[0]).toBe(`${summary} redirected to shop-green (idle); ${SWITCH_HINT}`);
  });

  it('an init container image alone is an "image change"', () => {
    const withInit = (image: string) => edit(blue, (c) => (c.spec!.template!.spec!.initContainers = [{ name: 'init', image }]));
    const v = viewOf(
      [withInit('busybox:1'), edit(green, (c) => (c.spec!.template!.spec!.initContainers = [{ name: 'init', image: 'busybox:1' }]))],
      [shop().svc],
    );
    const d = redirected(decide('mutate', deploymentUpdate(withInit('busybox:1'), withInit('busybox:2')), v, NOW, CTX));
    expect(recordOf(d).summary).toBe('image change');
    expect(revertOps(d)).toEqual([{ op: 'replace', path: '/spec/template/spec/initContainers/0/image', value: 'busybox:1' }]);
  });

  it('a dry-run request gets the same decision (nothing is written either way: the record is stored only with the request)', () => {
    const newD = withImage(blue, IMAGE_V2);
    const wet = decide('mutate', deploymentUpdate(blue, newD, { uid: 'same' }), view, NOW, CTX);
    const dry = decide('mutate', deploymentUpdate(blue, newD, { uid: 'same', dryRun: true }), view, NOW, CTX);
    expect(dry).toEqual(wet);
    expect(dry.outcome).toBe('redirected');
  });

  it('in the default namespace the hint has no -n flag', () => {
    const s = shop({ namespace: 'default' });
    const d = redirected(decide('mutate', deploymentUpdate(s.blue, withImage(s.blue, IMAGE_V2), { namespace: 'default' }), s.view, NOW, CTX));
    expect(d.warnings).toEqual(["image change redirected to shop-green (idle); run 'kubectl bg switch shop' when it is ready"]);
  });

  it.each([
    { name: 'idle runs the live version', idleImage: IMAGE_V1, idleReplicas: 2, extra: [] },
    { name: 'idle already runs the requested version', idleImage: IMAGE_V2, idleReplicas: 2, extra: [] },
    {
      name: 'idle runs a third version',
      idleImage: 'registry.example/shop:v0',
      idleReplicas: 2,
      extra: ['shop-green was running another version; this change replaces it'],
    },
    { name: 'idle holds a third version but is scaled to 0', idleImage: 'registry.example/shop:v0', idleReplicas: 0, extra: [] },
  ])('$name -> warnings $extra', ({ idleImage, idleReplicas, extra }) => {
    const s = shop({ idleImage, idleReplicas });
    const d = redirected(decide('mutate', deploymentUpdate(s.blue, withImage(s.blue, IMAGE_V2)), s.view, NOW, CTX));
    expect(d.warnings).toEqual([`image change redirected to shop-green (idle); ${SWITCH_HINT}`, ...extra]);
  });

  it('green live: the change goes to blue', () => {
    const s = shop();
    const svc = selecting(s.svc, 'green');
    const view = viewOf([s.blue, s.green], [svc]);
    const d = redirected(decide('mutate', deploymentUpdate(s.green, withImage(s.green, IMAGE_V2)), view, NOW, CTX));
    expect(d.check!.idle).toEqual({ name: 'shop-blue', colour: 'blue' });
    expect(d.check!.live).toEqual({ name: 'shop-green', colour: 'green' });
    expect(((d.check!.idleOps[1] as { value: unknown }).value as { metadata: { labels: Record<string, string> } }).metadata.labels.slot).toBe('blue');
    expect(recordOf(d)).toMatchObject({ from: 'green', to: 'blue' });
  });

  it('custom slot key (annotation on the active Service) and extra selector labels', () => {
    const s = shop({ slotKey: 'environment', extraLabels: { tier: 'frontend' } });
    expect(s.view.slotKey).toBe('environment');
    const d = redirected(decide('mutate', deploymentUpdate(s.blue, withImage(s.blue, IMAGE_V2)), s.view, NOW, CTX));
    expect(d.check!.idleOps[0]).toEqual({ op: 'test', path: '/spec/template/metadata/labels/environment', value: 'green' });
    expect(((d.check!.idleOps[1] as { value: unknown }).value as { metadata: { labels: Record<string, string> } }).metadata.labels).toEqual({
      app: 'shop',
      tier: 'frontend',
      environment: 'green',
    });
    expect(d.check!.idle.name).toBe('shop-green');
  });
});

describe('UPDATE of the live colour that changes only replicas or metadata: allowed unchanged', () => {
  const { blue, view } = shop();
  it.each([
    { name: 'scale up', change: (c: Deployment) => (c.spec!.replicas = 5) },
    { name: 'scale down to 1', change: (c: Deployment) => (c.spec!.replicas = 1) },
    { name: 'a Deployment label', change: (c: Deployment) => (c.metadata.labels!.team = 'a') },
    { name: 'a Deployment annotation', change: (c: Deployment) => (c.metadata.annotations = { note: 'x' }) },
    { name: 'status only', change: (c: Deployment) => (c.status = { observedGeneration: 9 }) },
    {
      name: 'kubectl rollout restart (restartedAt on the template)',
      change: (c: Deployment) => (c.spec!.template!.metadata!.annotations = { [RESTARTED_AT_ANNOTATION]: '2030-01-01T00:00:00Z' }),
    },
    {
      name: 'a second rollout restart',
      change: (c: Deployment) => (c.spec!.template!.metadata!.annotations = { [RESTARTED_AT_ANNOTATION]: '2030-01-02T00:00:00Z' }),
      old: (c: Deployment) => (c.spec!.template!.metadata!.annotations = { [RESTARTED_AT_ANNOTATION]: '2030-01-01T00:00:00Z' }),
    },
    { name: 'template creationTimestamp null (as the API server sends it)', change: (c: Deployment) => (c.spec!.template!.metadata!.creationTimestamp = null) },
    { name: 'strategy', change: (c: Deployment) => (c.spec!.strategy = { type: 'Recreate' }) },
    { name: 'nothing at all', change: () => {} },
  ])('$name', ({ change, old }) => {
    const oldD = old ? edit(blue, old) : blue;
    for (const endpoint of ['mutate', 'validate'] as const)
      expect(decide(endpoint, deploymentUpdate(oldD, edit(oldD, change)), view, NOW, CTX)).toEqual(ALLOWED);
  });
});

describe('scaling the live colour to 0, or DELETE of the live Deployment: refused', () => {
  const { blue, green, view } = shop();
  const scaleToZero =
    "Deployment shop-blue is the live colour (blue) of app shop; scaling it to 0 would take the app down. Switch to green first with 'kubectl bg switch shop -n prod' (the old colour is scaled down after the delay), or scale to at least 1";

  it.each([
    { name: 'Deployment replicas 2 -> 0, mutate', endpoint: 'mutate' as Endpoint, req: deploymentUpdate(blue, withReplicas(blue, 0)) },
    { name: 'Deployment replicas 2 -> 0, validate', endpoint: 'validate' as Endpoint, req: deploymentUpdate(blue, withReplicas(blue, 0)) },
    {
      name: 'Deployment replicas 2 -> 0 with an image change',
      endpoint: 'mutate' as Endpoint,
      req: deploymentUpdate(blue, withReplicas(withImage(blue, IMAGE_V2), 0)),
    },
    {
      name: 'scale subresource 2 -> 0 (replicas omitted, as the API server sends 0)',
      endpoint: 'validate' as Endpoint,
      req: scaleUpdate('shop-blue', 2, undefined),
    },
    { name: 'scale subresource 2 -> explicit 0', endpoint: 'validate' as Endpoint, req: scaleUpdate('shop-blue', 2, 0) },
  ])('$name', ({ endpoint, req }) => {
    expect(decide(endpoint, req, view, NOW, CTX)).toEqual({
      allowed: false,
      outcome: 'denied',
      code: 403,
      reason: 'Forbidden',
      message: scaleToZero,
      warnings: [],
    });
  });

  it.each([
    { name: 'scale subresource 2 -> 5', req: scaleUpdate('shop-blue', 2, 5) },
    { name: 'scale subresource of the idle colour to 0', req: scaleUpdate('shop-green', 2, undefined) },
    { name: 'scale subresource 0 -> 0 (already down)', req: scaleUpdate('shop-blue', undefined, undefined) },
    { name: 'scale subresource of a Deployment not in the app', req: scaleUpdate('other', 2, undefined) },
    {
      name: 'Deployment already at 0 stays at 0',
      req: deploymentUpdate(
        withReplicas(blue, 0),
        edit(withReplicas(blue, 0), (c) => (c.metadata.labels!.x = 'y')),
      ),
    },
    { name: 'idle Deployment replicas 2 -> 0', req: deploymentUpdate(green, withReplicas(green, 0)) },
  ])('allowed: $name', ({ req }) => {
    expect(decide('validate', req, view, NOW, CTX)).toEqual(ALLOWED);
  });

  const deleteLive =
    "Deployment shop-blue is the live colour (blue) of app shop: Service shop sends traffic to it. Switch first with 'kubectl bg switch shop -n prod', then delete it; to remove the whole app, delete Service shop first";

  it('DELETE of the live Deployment at validate', () => {
    expect(decide('validate', deploymentDelete(blue), view, NOW, CTX)).toEqual({
      allowed: false,
      outcome: 'denied',
      code: 403,
      reason: 'Forbidden',
      message: deleteLive,
      warnings: [],
    });
  });

  it.each([
    { name: 'the live Deployment at mutate (validate decides)', endpoint: 'mutate' as Endpoint, d: blue, user: ADMIN },
    { name: 'the idle Deployment', endpoint: 'validate' as Endpoint, d: green, user: ADMIN },
    {
      name: 'the live Deployment by the namespace controller',
      endpoint: 'validate' as Endpoint,
      d: blue,
      user: { username: 'system:serviceaccount:kube-system:namespace-controller' },
    },
    {
      name: 'the live Deployment by the garbage collector',
      endpoint: 'validate' as Endpoint,
      d: blue,
      user: { username: 'system:serviceaccount:kube-system:generic-garbage-collector' },
    },
  ])('DELETE allowed: $name', ({ endpoint, d, user }) => {
    expect(decide(endpoint, deploymentDelete(d, { user }), view, NOW, CTX)).toEqual(ALLOWED);
  });

  it('DELETE by a user merely named like a controller is refused', () => {
    const d = decide('validate', deploymentDelete(blue, { user: { username: 'namespace-controller' } }), view, NOW, CTX);
    expect(denied(d).message).toBe(deleteLive);
  });

  it('DELETE in the default namespace: the hint has no -n flag', () => {
    const s = shop({ namespace: 'default' });
    expect(denied(decide('validate', deploymentDelete(s.blue, { namespace: 'default' }), s.view, NOW, CTX)).message).toContain(
      "Switch first with 'kubectl bg switch shop', then delete it",
    );
  });
});

describe('UPDATE of the idle colour: allowed as is', () => {
  const { green, view } = shop();
  it.each([
    { name: 'set image', change: (c: Deployment) => (c.spec!.template!.spec!.containers![0]!.image = IMAGE_V2) },
    { name: 'set env', change: (c: Deployment) => (c.spec!.template!.spec!.containers![0]!.env = []) },
    { name: 'scale to 0', change: (c: Deployment) => (c.spec!.replicas = 0) },
    {
      name: 'the reconciler writing the change and its last-change note',
      change: (c: Deployment) => {
        c.metadata.annotations = { [LAST_CHANGE_ANNOTATION]: '{"from":"shop-blue"}' };
        c.spec!.template!.spec!.containers![0]!.image = IMAGE_V2;
      },
    },
  ])('$name', ({ change }) => {
    for (const endpoint of ['mutate', 'validate'] as const)
      expect(decide(endpoint, deploymentUpdate(green, edit(green, change)), view, NOW, CTX)).toEqual(ALLOWED);
  });
});

describe("a change to a Deployment's slot or app label in its template, or to its selector: refused", () => {
  const { blue, green, view } = shop();
  const s = shop({ slotKey: 'environment' });
  it.each([
    {
      name: 'template slot label green -> blue on the idle colour',
      view,
      old: green,
      change: (c: Deployment) => (c.spec!.template!.metadata!.labels!.slot = 'blue'),
      message: /^the slot label of Deployment shop-green's pod template cannot change \(green -> blue\): it would mix colours or orphan pods/,
    },
    {
      name: 'template slot label removed on the live colour',
      view,
      old: blue,
      change: (c: Deployment) => delete c.spec!.template!.metadata!.labels!.slot,
      message: /^the slot label of Deployment shop-blue's pod template cannot change \(blue -> <none>\)/,
    },
    {
      name: 'template app label changed',
      view,
      old: blue,
      change: (c: Deployment) => (c.spec!.template!.metadata!.labels!['bluegreen.io/app'] = 'other'),
      message: /^the bluegreen\.io\/app label of Deployment shop-blue's pod template cannot change \(<none> -> other\)/,
    },
    {
      name: 'selector changed on the idle colour',
      view,
      old: green,
      change: (c: Deployment) => (c.spec!.selector = { matchLabels: { app: 'shop', slot: 'blue' } }),
      message: /^the selector of Deployment shop-green cannot change: the ReplicaSets it owns would be orphaned/,
    },
    {
      name: 'selector gains a label',
      view,
      old: blue,
      change: (c: Deployment) => (c.spec!.selector!.matchLabels!.tier = 'web'),
      message: /^the selector of Deployment shop-blue cannot change/,
    },
    {
      name: 'selector matchExpressions added',
      view,
      old: blue,
      change: (c: Deployment) => (c.spec!.selector!.matchExpressions = [{ key: 'x', operator: 'Exists' }]),
      message: /^the selector of Deployment shop-blue cannot change/,
    },
    {
      name: 'custom slot key: environment label changed',
      view: s.view,
      old: s.green,
      change: (c: Deployment) => (c.spec!.template!.metadata!.labels!.environment = 'blue'),
      message: /^the environment label of Deployment shop-green's pod template cannot change \(green -> blue\)/,
    },
  ])('$name', ({ view: v, old, change, message }) => {
    for (const endpoint of ['mutate', 'validate'] as const) {
      const d = denied(decide(endpoint, deploymentUpdate(old, edit(old, change)), v, NOW, CTX));
      expect(d.code).toBe(422);
      expect(d.reason).toBe('Invalid');
      expect(d.message).toMatch(message);
    }
  });

  it('the selector keys in another order is not a change', () => {
    const reordered = edit(blue, (c) => (c.spec!.selector = { matchLabels: { slot: 'blue', app: 'shop' } }));
    expect(decide('mutate', deploymentUpdate(blue, reordered), view, NOW, CTX)).toEqual(ALLOWED);
  });
});

describe('a Service selector patch on an enrolled Service', () => {
  // green rolled out at 2 replicas, the live count.
  const { blue, green, svc, view } = shop();
  const notReady = (d: Deployment) => viewOf([blue, d], [svc]);
  const validate = (req: AdmissionRequest, v: AppView = view) => decide('validate', req, v, NOW, CTX);

  it('to a fully available colour: allowed', () => {
    expect(validate(serviceUpdate(svc, selecting(svc, 'green')))).toEqual(ALLOWED);
  });

  it.each([
    {
      name: 'drops the slot key (traffic to both colours)',
      to: null,
      code: 422,
      message:
        "Service shop must keep slot in its selector: without it the Service sends traffic to both colours of app shop. Use 'kubectl bg switch shop -n prod' to change colours",
    },
    { name: 'names purple', to: 'purple', code: 422, message: 'Service shop selects slot=purple, a colour that does not exist; app shop has blue and green' },
    {
      name: 'names Blue (case matters)',
      to: 'Blue',
      code: 422,
      message: 'Service shop selects slot=Blue, a colour that does not exist; app shop has blue and green',
    },
    { name: 'names an empty colour', to: '', code: 422, message: 'Service shop selects slot=, a colour that does not exist; app shop has blue and green' },
  ])('$name: refused', ({ to, code, message }) => {
    const d = denied(validate(serviceUpdate(svc, selecting(svc, to))));
    expect(d.code).toBe(code);
    expect(d.message).toBe(message);
  });

  it('names a colour whose Deployment does not exist: refused', () => {
    const v = viewOf([blue], [svc]);
    const d = denied(validate(serviceUpdate(svc, selecting(svc, 'green')), v));
    expect(d.code).toBe(422);
    expect(d.message).toBe(
      "Service shop selects slot=green, but app shop has no green Deployment; create it with 'kubectl bg init shop -n prod --from deployment/<name>'",
    );
  });

  const tail =
    ". Wait with 'kubectl bg status shop -n prod --watch', then 'kubectl bg switch shop -n prod'; to override, 'kubectl bg switch shop -n prod --force' (or set annotation bluegreen.io/force-switch-to=green in the same patch)";

  it.each([
    {
      name: 'controller has not observed the latest generation',
      green: deployment({ colour: 'green', generation: 3, status: { observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2 } }),
      why: 'shop-green is still rolling out (its controller has not observed generation 3)',
    },
    { name: 'paused', green: deployment({ colour: 'green', paused: true }), why: 'shop-green is paused' },
    {
      name: 'fewer replicas than the live colour',
      green: deployment({ colour: 'green', replicas: 1 }),
      why: 'shop-green is scaled to 1 replicas, fewer than the 2 the live colour runs',
    },
    {
      name: 'scaled to 0',
      green: deployment({ colour: 'green', replicas: 0 }),
      why: 'shop-green is scaled to 0 replicas, fewer than the 2 the live colour runs',
    },
    {
      name: 'old pods still running',
      green: deployment({ colour: 'green', status: { observedGeneration: 1, replicas: 3, updatedReplicas: 2, availableReplicas: 3 } }),
      why: 'shop-green is still rolling out (2 of 2 pods updated, 3 running)',
    },
    {
      name: 'not all pods updated',
      green: deployment({ colour: 'green', status: { observedGeneration: 1, replicas: 2, updatedReplicas: 1, availableReplicas: 2 } }),
      why: 'shop-green is still rolling out (1 of 2 pods updated, 2 running)',
    },
    {
      name: 'not all available',
      green: deployment({ colour: 'green', status: { observedGeneration: 1, replicas: 2, updatedReplicas: 2, availableReplicas: 1 } }),
      why: 'shop-green has 1/2 available replicas',
    },
  ])('to a colour that is not ready ($name): refused with the reason and the override', ({ green: g, why }) => {
    const d = denied(validate(serviceUpdate(svc, selecting(svc, 'green')), notReady(g)));
    expect(d.code).toBe(403);
    expect(d.message).toBe(`Service shop cannot send app shop's traffic to green yet: ${why}${tail}`);
  });

  it('explicit override bluegreen.io/force-switch-to=green in the same patch: allowed with a warning', () => {
    const g = deployment({ colour: 'green', paused: true });
    const newSvc = annotated(selecting(svc, 'green'), { [FORCE_SWITCH_ANNOTATION]: 'green' });
    expect(validate(serviceUpdate(svc, newSvc), notReady(g))).toEqual({
      allowed: true,
      outcome: 'allowed',
      warnings: ['switched Service shop to green by explicit override (bluegreen.io/force-switch-to=green) although shop-green is paused'],
    });
  });

  it('an override naming the other colour does not count', () => {
    const g = deployment({ colour: 'green', paused: true });
    const newSvc = annotated(selecting(svc, 'green'), { [FORCE_SWITCH_ANNOTATION]: 'blue' });
    expect(denied(validate(serviceUpdate(svc, newSvc), notReady(g))).code).toBe(403);
  });

  it('an override does not let a Service drop the slot key', () => {
    const newSvc = annotated(selecting(svc, null), { [FORCE_SWITCH_ANNOTATION]: 'green' });
    expect(denied(validate(serviceUpdate(svc, newSvc))).code).toBe(422);
  });

  it("the readiness bar is the live colour's replica count, not the target's", () => {
    // green runs 3 of 3 but blue runs 5: not enough.
    const b = deployment({ colour: 'blue', replicas: 5 });
    const g = deployment({ colour: 'green', replicas: 3 });
    const d = denied(validate(serviceUpdate(svc, selecting(svc, 'green')), viewOf([b, g], [svc])));
    expect(d.message).toContain('shop-green is scaled to 3 replicas, fewer than the 5 the live colour runs');
  });

  describe('with a change pending on the live colour (recorded, not yet applied to green)', () => {
    const pendingOn = (d: Deployment, value: string) => annotated(d, { [PENDING_CHANGE_ANNOTATION]: value });
    const sealed = (at: string) => sealedRecord(blue, { by: 'bob', at });
    it('a switch is refused until the change has reached green', () => {
      const v = viewOf([pendingOn(blue, sealed(new Date(NOW.getTime() - 3000).toISOString())), green], [svc]);
      const d = denied(validate(serviceUpdate(svc, selecting(svc, 'green')), v));
      expect(d.message).toBe(
        `Service shop cannot send app shop's traffic to green yet: the image change by bob (3s ago) recorded on shop-blue has not reached shop-green yet; it is being applied${tail}`,
      );
    });
    it('an unreadable record holds the switch back too (the reconciler removes it)', () => {
      const v = viewOf([pendingOn(blue, '{not json'), green], [svc]);
      expect(denied(validate(serviceUpdate(svc, selecting(svc, 'green')), v)).message).toContain(
        'a redirected change recorded on shop-blue has not reached shop-green yet',
      );
    });
    it('the explicit override passes it, saying why', () => {
      const v = viewOf([pendingOn(blue, sealed(NOW.toISOString())), green], [svc]);
      const newSvc = annotated(selecting(svc, 'green'), { [FORCE_SWITCH_ANNOTATION]: 'green' });
      expect(validate(serviceUpdate(svc, newSvc), v)).toHaveProperty('warnings', [
        'switched Service shop to green by explicit override (bluegreen.io/force-switch-to=green) although the image change by bob (0s ago) recorded on shop-blue has not reached shop-green yet; it is being applied',
      ]);
    });
  });

  describe('a preview Service', () => {
    const preview = service({ name: 'shop-preview', role: 'preview', colour: 'green' });
    const v = viewOf([blue, deployment({ colour: 'green', paused: true })], [svc, preview]);
    it('may point at an unready colour', () => {
      expect(validate(serviceUpdate(selecting(preview, 'blue'), preview), v)).toEqual(ALLOWED);
      expect(validate(serviceUpdate(preview, selecting(preview, 'blue')), v)).toEqual(ALLOWED);
    });
    it.each([
      { name: 'drop the slot key', to: null },
      { name: 'purple', to: 'purple' },
    ])('may not $name', ({ to }) => {
      expect(denied(validate(serviceUpdate(preview, selecting(preview, to)), v)).code).toBe(422);
    });
  });

  it.each([
    { name: 'another selector key changes, slot kept', change: (s: typeof svc) => edit(s, (c) => (c.spec!.selector!.app = 'shop2')) },
    { name: 'another selector key added', change: (s: typeof svc) => edit(s, (c) => (c.spec!.selector!.tier = 'web')) },
    { name: 'annotations only', change: (s: typeof svc) => annotated(s, { note: 'x' }) },
    { name: 'ports only', change: (s: typeof svc) => edit(s, (c) => (c.spec!.ports = [])) },
  ])('$name: allowed even while green is not ready', ({ change }) => {
    expect(validate(serviceUpdate(svc, change(svc)), notReady(deployment({ colour: 'green', paused: true })))).toEqual(ALLOWED);
  });

  it('another selector key changes while the live colour itself is not ready: allowed (no switch happens)', () => {
    const sickBlue = deployment({ colour: 'blue', paused: true });
    const v = viewOf([sickBlue, green], [svc]);
    expect(
      validate(
        serviceUpdate(
          svc,
          edit(svc, (c) => (c.spec!.selector!.tier = 'web')),
        ),
        v,
      ),
    ).toEqual(ALLOWED);
    // ...while a switch to that colour would be refused.
    const onGreen = selecting(svc, 'green');
    expect(denied(validate(serviceUpdate(onGreen, svc), v)).message).toMatch(/^Service shop cannot send app shop's traffic to blue yet: shop-blue is paused\./);
  });

  it('an unchanged selector that already lacks the slot key is not refused (nothing changes)', () => {
    const bad = selecting(svc, null);
    expect(validate(serviceUpdate(bad, annotated(bad, { note: 'x' })))).toEqual(ALLOWED);
  });

  it('enrolling a Service (adding the app label) is checked even when its selector does not change', () => {
    const bare = edit(selecting(svc, null), (c) => delete c.metadata.labels);
    const d = denied(validate(serviceUpdate(bare, selecting(svc, null))));
    expect(d.message).toMatch(/^Service shop must keep slot in its selector/);
    expect(
      validate(
        serviceUpdate(
          edit(svc, (c) => delete c.metadata.labels),
          svc,
        ),
      ),
    ).toEqual(ALLOWED);
  });

  it('the slot key named by the Service itself', () => {
    const s = shop({ slotKey: 'environment' });
    const d = denied(validate(serviceUpdate(s.svc, selecting(s.svc, null, 'environment')), s.view));
    expect(d.message).toMatch(/^Service shop must keep environment in its selector/);
    expect(validate(serviceUpdate(s.svc, selecting(s.svc, 'green', 'environment')), s.view)).toEqual(ALLOWED);
    expect(denied(validate(serviceUpdate(s.svc, selecting(s.svc, 'purple', 'environment')), s.view)).message).toBe(
      'Service shop selects environment=purple, a colour that does not exist; app shop has blue and green',
    );
  });

  it.each([
    { name: 'CREATE of an active Service to a ready colour', req: serviceCreate(service({ role: 'active', colour: 'green' })), outcome: 'allowed' },
    { name: 'CREATE of a Service without the slot key', req: serviceCreate(service({ name: 'shop-2', colour: null })), outcome: 'denied' },
    { name: 'DELETE of the active Service', req: serviceDelete(svc), outcome: 'allowed' },
  ])('$name: $outcome', ({ req, outcome }) => {
    expect(validate(req).outcome).toBe(outcome);
  });

  it('Service requests at the mutate endpoint are allowed untouched (validate decides)', () => {
    expect(decide('mutate', serviceUpdate(svc, selecting(svc, null)), view, NOW, CTX)).toEqual(ALLOWED);
    expect(decide('mutate', serviceUpdate(svc, selecting(svc, 'purple')), view, NOW, CTX)).toEqual(ALLOWED);
  });
});

describe('apps whose state is ambiguous', () => {
  const { blue, green, svc } = shop();
  const blue2 = deployment({ colour: 'blue', name: 'shop-blue-2' });
  const other = service({ name: 'shop-internal' });

  it.each([
    {
      name: 'two Deployments of one colour (the first filed)',
      view: viewOf([blue, green, blue2], [svc]),
      target: blue,
      problem: 'app shop has two blue Deployments (shop-blue, shop-blue-2); keep one per colour',
    },
    // The same app, the Deployments listed the other way round (the cache's order is arbitrary).
    {
      name: 'two Deployments of one colour (the second filed)',
      view: viewOf([blue2, green, blue], [svc]),
      target: blue,
      problem: 'app shop has two blue Deployments (shop-blue-2, shop-blue); keep one per colour',
    },
    {
      name: 'two Services, none annotated active, both selecting blue',
      view: viewOf([blue, green], [service(), other]),
      target: blue,
      problem:
        "app shop has 2 Services (shop, shop-internal) and none is annotated bluegreen.io/role=active; run 'kubectl annotate service shop bluegreen.io/role=active'",
    },
    {
      name: 'two Services annotated active, both selecting blue',
      view: viewOf([blue, green], [service({ role: 'active' }), service({ name: 'shop-internal', role: 'active' })]),
      target: blue,
      problem: 'app shop has 2 Services annotated bluegreen.io/role=active (shop, shop-internal); keep the annotation on one',
    },
  ])('$name: a template change to a Deployment that receives traffic is refused (409), never applied in place', ({ view, target, problem }) => {
    expect(view.problems).toEqual([problem]);
    const d = denied(decide('mutate', deploymentUpdate(target, withImage(target, IMAGE_V2)), view, NOW, CTX));
    expect(d.code).toBe(409);
    expect(d.reason).toBe('Conflict');
    expect(d.message).toBe(`app shop is in an ambiguous state: ${problem}`);
  });

  it('no Service at all: nothing is live, a change is allowed as is', () => {
    const v = viewOf([blue, green], []);
    expect(v.live).toBeUndefined();
    expect(decide('mutate', deploymentUpdate(blue, withImage(blue, IMAGE_V2)), v, NOW, CTX)).toEqual(ALLOWED);
  });

  it('the active Service selects no colour (traffic to both): a template change to either is refused (409), never applied in place', () => {
    const v = viewOf([blue, green], [selecting(svc, null)]);
    const d = denied(decide('mutate', deploymentUpdate(green, withImage(green, IMAGE_V2)), v, NOW, CTX));
    expect(d.code).toBe(409);
    expect(d.message).toBe('app shop is in an ambiguous state: Service shop selects no slot label; it should select slot=blue or slot=green');
  });

  it('the active Service selects no colour: a replicas-only change is still allowed, with the problem as a warning', () => {
    const v = viewOf([blue, green], [selecting(svc, null)]);
    const d = decide(
      'mutate',
      deploymentUpdate(
        green,
        edit(green, (c) => (c.spec!.replicas = 4)),
      ),
      v,
      NOW,
      CTX,
    );
    expect(d).toEqual({ allowed: true, outcome: 'allowed', warnings: ['Service shop selects no slot label; it should select slot=blue or slot=green'] });
  });

  it('live change with no idle Deployment: refused with the init command', () => {
    const d = denied(decide('mutate', deploymentUpdate(blue, withImage(blue, IMAGE_V2)), viewOf([blue], [svc]), NOW, CTX));
    expect(d.code).toBe(409);
    expect(d.message).toBe(
      "app shop has no green Deployment to take this change, and the live colour shop-blue must not change in place; create it with 'kubectl bg init shop -n prod --from deployment/shop-blue'",
    );
  });

  it('a Deployment without a colour label in an enrolled app is not live: allowed', () => {
    const stray = edit(deployment({ colour: 'x', name: 'shop-tools' }), (c) => delete c.spec!.template!.metadata!.labels!.slot);
    const v = viewOf([blue, green, stray], [svc]);
    expect(v.problems).toEqual(['Deployment shop-tools of app shop has no slot=blue|green label in its pod template']);
    expect(decide('mutate', deploymentUpdate(stray, withImage(stray, IMAGE_V2)), v, NOW, CTX)).toEqual(ALLOWED);
  });
});

describe("an app's objects in any order (seed 003: the Deployments first, then the Services that name the slot key)", () => {
  const blue = deployment({ colour: 'blue', slotKey: 'version' });
  const green = deployment({ colour: 'green', slotKey: 'version' });
  const active = service({ role: 'active', colour: 'blue', slotKey: 'version', annotateSlotKey: true });
  const preview = service({ name: 'shop-preview', role: 'preview', colour: 'green', slotKey: 'version' });
  const validate = (req: AdmissionRequest, view: AppView) => decide('validate', req, view, NOW, CTX);

  it('the Deployments are there, no Service yet: the active Service naming the slot key is admitted (its key makes them colours)', () => {
    const view = viewOf([blue, green], []);
    expect(view.deployments).toEqual({});
    expect(validate(serviceCreate(active), view)).toEqual(ALLOWED);
  });

  it('then the preview, with the Deployments and the active Service there: admitted', () => {
    expect(validate(serviceCreate(preview), viewOf([blue, green], [active]))).toEqual(ALLOWED);
  });

  it('the Services first: the active Service and a preview for a colour not there yet are admitted, with a word on what is missing', () => {
    const a = validate(serviceCreate(active), viewOf([], []));
    expect(a.outcome).toBe('allowed');
    expect(a).toHaveProperty('warnings', ['Service shop selects version=blue, and app shop has no blue Deployment yet; it gets endpoints once that exists']);
    const p = validate(serviceCreate(preview), viewOf([blue], [active]));
    expect(p).toHaveProperty('warnings', [
      'Service shop-preview selects version=green, and app shop has no green Deployment yet; it gets endpoints once that exists',
    ]);
  });

  it('a new active Service on a colour still rolling out: admitted with a warning (it moves no traffic away from anything)', () => {
    const rolling = deployment({
      colour: 'blue',
      slotKey: 'version',
      status: { observedGeneration: 1, replicas: 2, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 },
    });
    const d = validate(serviceCreate(active), viewOf([rolling, green], []));
    expect(d.outcome).toBe('allowed');
    expect((d as { warnings: string[] }).warnings[0]).toMatch(
      /^Service shop is new and sends app shop's traffic to blue, which is not fully available yet: shop-blue/,
    );
  });

  it('once the whole app exists the checks hold: a switch of the active Service to a colour that is missing is refused', () => {
    const d = validate(serviceUpdate(active, selecting(active, 'green', 'version')), viewOf([blue], [active]));
    expect(d.outcome).toBe('denied');
  });
});

describe('the pending-change record: written only by kube-bluegreen', () => {
  const { blue, green, view } = shop();
  const KEY = PENDING_CHANGE_ANNOTATION;
  const fields = (o: Partial<PendingChange> = {}) => recordFields(blue, { by: 'mallory', request: 'r-0', ...o });
  const withRecord = (d: Deployment, value: string) => annotated(d, { [KEY]: value });

  it.each([
    { name: 'hand-written JSON', value: JSON.stringify({ v: 1, ...fields() }) },
    { name: 'sealed, then altered (another image)', value: SEAL.seal(fields()).replace(IMAGE_V2, 'evil.example/shop:v9') },
    { name: 'sealed with another key', value: JSON.stringify({ v: 1, ...fields(), sig: 'AAAA' }) },
    { name: 'sealed for another update of this Deployment (replayed, e.g. from a dry run)', value: SEAL.seal(fields({ base: '999' })) },
    { name: 'sealed for another Deployment', value: SEAL.seal(fields({ deployment: 'another-uid' })) },
  ])('planted on the live colour ($name): validate refuses, mutate undoes it', ({ value }) => {
    const incoming = withRecord(blue, value);
    const v = denied(decide('validate', deploymentUpdate(blue, incoming), view, NOW, CTX));
    expect(v.code).toBe(403);
    expect(v.message).toBe(
      'annotation bluegreen.io/pending-change of Deployment shop-blue is written only by kube-bluegreen (it records a redirected change); leave it out of your change',
    );
    const m = decide('mutate', deploymentUpdate(blue, incoming), view, NOW, CTX);
    expect(m.outcome).toBe('allowed');
    if (!m.allowed) throw new Error('unreachable');
    expect(m.warnings).toEqual(['ignored the change to annotation bluegreen.io/pending-change of shop-blue: only kube-bluegreen writes it']);
    expect(applied(incoming, m).metadata.annotations?.[KEY]).toBeUndefined();
  });

  it('planted on the idle colour: refused and undone the same way', () => {
    const incoming = withRecord(green, SEAL.seal(fields({ deployment: green.metadata.uid ?? '' })));
    expect(denied(decide('validate', deploymentUpdate(green, incoming), view, NOW, CTX)).code).toBe(403);
    const m = decide('mutate', deploymentUpdate(green, incoming), view, NOW, CTX);
    if (!m.allowed) throw new Error('expected allowed');
    expect(applied(incoming, m).metadata.annotations?.[KEY]).toBeUndefined();
  });

  it('removing a pending record (kubectl replace, helm upgrade --force: a manifest without it) is undone: the change stays pending', () => {
    const stored = withRecord(blue, SEAL.seal(fields()));
    const incoming = edit(stored, (c) => delete c.metadata.annotations![KEY]);
    const m = decide('mutate', deploymentUpdate(stored, incoming), view, NOW, CTX);
    if (!m.allowed) throw new Error('expected allowed');
    expect(applied(incoming, m).metadata.annotations![KEY]).toBe(stored.metadata.annotations![KEY]);
  });

  it('kubectl rollout undo (an old record copied back from a ReplicaSet, and an old template): redirected, with a new record', () => {
    const stale = SEAL.seal(fields({ base: '1', request: 'old' }));
    const stored = edit(withImage(blue, IMAGE_V2), (c) => (c.metadata.resourceVersion = '7'));
    const rsTemplate = withImage(blue, 'registry.example/shop:v0');
    const incoming = edit(withRecord(rsTemplate, stale), (c) => (c.metadata.resourceVersion = '7'));
    const d = redirected(decide('mutate', deploymentUpdate(stored, incoming, { uid: 'undo' }), viewOf([stored, green], [shop().svc]), NOW, CTX));
    const rec = recordOf(d);
    expect(rec.request).toBe('undo');
    expect(rec.base).toBe('7');
    expect(rec.template.spec!.containers![0]!.image).toBe('registry.example/shop:v0');
    expect(applied(incoming, d).spec!.template).toEqual(stored.spec!.template);
  });

  it("the reconciler (the webhook's own identity) may remove or write it", () => {
    const stored = withRecord(blue, SEAL.seal(fields()));
    const cleared = edit(stored, (c) => delete c.metadata.annotations![KEY]);
    for (const endpoint of ['mutate', 'validate'] as const)
      expect(decide(endpoint, deploymentUpdate(stored, cleared, { user: { username: SELF } }), view, NOW, CTX)).toEqual(ALLOWED);
  });

  it('the same user is not the webhook: removing it as anyone else is refused at validate', () => {
    const stored = withRecord(blue, SEAL.seal(fields()));
    const cleared = edit(stored, (c) => delete c.metadata.annotations![KEY]);
    expect(
      denied(decide('validate', deploymentUpdate(stored, cleared, { user: { username: 'system:serviceaccount:other:kube-bluegreen' } }), view, NOW, CTX)).code,
    ).toBe(403);
  });

  it('its own record, sealed for this very update, is accepted at validate (the request as mutate left it)', () => {
    const d = redirected(decide('mutate', deploymentUpdate(blue, withImage(blue, IMAGE_V2)), view, NOW, CTX));
    const stored = applied(withImage(blue, IMAGE_V2), d);
    expect(decide('validate', deploymentUpdate(blue, stored), view, NOW, CTX)).toEqual(ALLOWED);
  });

  it('reinvoked after another webhook rewrote the restored template (a tag to a digest): restored again, the first record stands', () => {
    const first = redirected(decide('mutate', deploymentUpdate(blue, withImage(blue, IMAGE_V2), { uid: 'u1' }), view, NOW, CTX));
    const afterUs = applied(withImage(blue, IMAGE_V2), first);
    const rewritten = edit(afterUs, (c) => (c.spec!.template!.spec!.containers![0]!.image = `${IMAGE_V1}@sha256:${'a'.repeat(64)}`));
    const again = decide('mutate', deploymentUpdate(blue, rewritten, { uid: 'u1' }), view, NOW, CTX);
    if (!again.allowed) throw new Error('expected allowed');
    expect(again.outcome).toBe('allowed');
    expect(again.check).toBeUndefined();
    const final = applied(rewritten, again);
    expect(final.spec!.template).toEqual(blue.spec!.template);
    expect(final.metadata.annotations![KEY]).toBe(afterUs.metadata.annotations![KEY]);
    expect(decide('validate', deploymentUpdate(blue, final), view, NOW, CTX)).toEqual(ALLOWED);
  });

  it('reinvoked where the webhook and the user are one identity (a local admin): still its own record, not a new change', () => {
    const asSelf = { username: SELF };
    const first = redirected(decide('mutate', deploymentUpdate(blue, withImage(blue, IMAGE_V2), { uid: 'u1', user: asSelf }), view, NOW, CTX));
    const afterUs = applied(withImage(blue, IMAGE_V2), first);
    const rewritten = edit(afterUs, (c) => (c.spec!.template!.spec!.containers![0]!.image = 'mirror.example/shop:v1'));
    const again = decide('mutate', deploymentUpdate(blue, rewritten, { uid: 'u1', user: asSelf }), view, NOW, CTX);
    if (!again.allowed) throw new Error('expected allowed');
    expect(again.check).toBeUndefined();
    expect(applied(rewritten, again).metadata.annotations![KEY]).toBe(afterUs.metadata.annotations![KEY]);
  });

  it('a second change before the first was applied replaces it, and says so', () => {
    const stored = withRecord(blue, SEAL.seal(fields({ by: 'bob' })));
    const d = redirected(decide('mutate', deploymentUpdate(stored, withImage(stored, 'registry.example/shop:v3')), view, NOW, CTX));
    expect(d.warnings[1]).toBe('it replaces the image change by bob that had not reached shop-green yet');
    expect(recordOf(d).template.spec!.containers![0]!.image).toBe('registry.example/shop:v3');
  });
});

describe('the validate endpoint as a safety net', () => {
  const { blue, view } = shop();
  it('a live template change that reached validate unreverted is refused', () => {
    const d = denied(decide('validate', deploymentUpdate(blue, withImage(blue, IMAGE_V2)), view, NOW, CTX));
    expect(d).toEqual({
      allowed: false,
      outcome: 'denied',
      code: 403,
      reason: 'Forbidden',
      message:
        "the pod template of shop-blue, the live colour of app shop, cannot change in place; change it and kube-bluegreen redirects the change to the idle colour, then run 'kubectl bg switch shop -n prod'",
      warnings: [],
    });
  });

  it('the reverted object (what mutate sends on) passes validate', () => {
    const newD = withImage(blue, IMAGE_V2);
    const m = redirected(decide('mutate', deploymentUpdate(blue, newD), view, NOW, CTX));
    const reverted = fjp.applyPatch(structuredClone(newD), m.patch!, true, false).newDocument;
    expect(decide('validate', deploymentUpdate(blue, reverted), view, NOW, CTX)).toEqual(ALLOWED);
  });
});

describe('CREATE of a Deployment in an enrolled app', () => {
  const { blue, green, svc, view } = shop();
  it.each([
    { name: 'the missing colour', view: viewOf([blue], [svc]), d: green, want: ALLOWED },
    { name: 'the same Deployment again (a retry)', view, d: blue, want: ALLOWED },
    {
      name: 'a second blue Deployment',
      view,
      d: deployment({ colour: 'blue', name: 'shop-blue-2' }),
      want: {
        allowed: false,
        outcome: 'denied',
        code: 409,
        reason: 'AlreadyExists',
        message: 'app shop already has a blue Deployment (shop-blue); each colour has exactly one',
        warnings: [],
      } as Decision,
    },
    {
      name: 'a Deployment without a colour',
      view,
      d: edit(deployment({ colour: 'x', name: 'shop-tools' }), (c) => delete c.spec!.template!.metadata!.labels!.slot),
      want: {
        allowed: true,
        outcome: 'allowed',
        warnings: ['Deployment shop-tools has no slot=blue|green label in its pod template; it is not part of a colour'],
      } as Decision,
    },
  ])('$name', ({ view: v, d, want }) => {
    expect(decide('validate', deploymentCreate(d), v, NOW, CTX)).toEqual(want);
  });
});

describe('requests outside the enrolled apps or not about our kinds', () => {
  const { blue, svc } = shop();

  it.each([
    { name: 'live-looking Deployment UPDATE', req: deploymentUpdate(blue, withImage(blue, IMAGE_V2)) },
    { name: 'Deployment DELETE', req: deploymentDelete(blue) },
    { name: 'Service selector drop', req: serviceUpdate(svc, selecting(svc, null)) },
    { name: 'scale to 0', req: scaleUpdate('shop-blue', 2, undefined) },
  ])('not enrolled (no view), $name: allowed untouched', ({ req }) => {
    for (const endpoint of ['mutate', 'validate'] as const)
      expect(decide(endpoint, req, undefined, NOW, CTX)).toEqual({ allowed: true, outcome: 'not-enrolled', warnings: [] });
  });

  const { view } = shop();
  const withKind = (kind: Partial<AdmissionRequest>) => ({ ...deploymentUpdate(blue, blue), ...kind }) as AdmissionRequest;
  it.each([
    {
      name: 'a ConfigMap',
      req: withKind({ kind: { group: '', version: 'v1', kind: 'ConfigMap' }, resource: { group: '', version: 'v1', resource: 'configmaps' } }),
      message: 'this webhook handles deployments, deployments/scale and services, not core/configmaps (ConfigMap)',
    },
    {
      name: 'deployments/status',
      req: withKind({ subResource: 'status' }),
      message: 'this webhook handles deployments, deployments/scale and services, not apps/deployments/status (Deployment)',
    },
    {
      name: 'deployments/scale with kind Deployment',
      req: withKind({ subResource: 'scale' }),
      message: 'this webhook handles deployments, deployments/scale and services, not apps/deployments/scale (Deployment)',
    },
    {
      name: 'extensions/deployments',
      req: withKind({ resource: { group: 'extensions', version: 'v1beta1', resource: 'deployments' } }),
      message: 'this webhook handles deployments, deployments/scale and services, not extensions/deployments (Deployment)',
    },
    {
      name: 'services with kind Deployment',
      req: withKind({ resource: { group: '', version: 'v1', resource: 'services' } }),
      message: 'this webhook handles deployments, deployments/scale and services, not core/services (Deployment)',
    },
    { name: 'CONNECT', req: withKind({ operation: 'CONNECT' }), message: 'CONNECT requests are not handled' },
  ])('$name -> invalid', ({ req, message }) => {
    for (const v of [view, undefined]) expect(decide('mutate', req, v, NOW, CTX)).toEqual({ allowed: false, outcome: 'invalid', message });
  });

  it.each([
    { name: 'Deployment', req: deploymentUpdate(blue, blue), type: 'deployment' },
    { name: 'Scale', req: scaleUpdate('shop-blue', 1, 2), type: 'scale' },
    { name: 'Service', req: serviceUpdate(svc, svc), type: 'service' },
  ])('requestTarget: $name -> $type', ({ req, type }) => {
    expect(requestTarget(req)).toEqual({ type });
  });

  it.each([
    { name: 'UPDATE: the object', req: deploymentUpdate(blue, blue), app: 'shop' },
    { name: 'DELETE: the old object', req: deploymentDelete(blue), app: 'shop' },
    { name: 'Scale: none (the adapter asks the cache)', req: scaleUpdate('shop-blue', 1, 2), app: undefined },
    {
      name: 'unlabelled',
      req: deploymentUpdate(
        edit(blue, (c) => delete c.metadata.labels),
        edit(blue, (c) => delete c.metadata.labels),
      ),
      app: undefined,
    },
    {
      name: 'the app label removed: the old object still counts',
      req: deploymentUpdate(
        blue,
        edit(blue, (c) => delete c.metadata.labels!['bluegreen.io/app']),
      ),
      app: 'shop',
    },
    { name: 'an empty app label', req: deploymentCreate(edit(blue, (c) => (c.metadata.labels!['bluegreen.io/app'] = ''))), app: undefined },
  ])('requestApp: $name -> $app', ({ req, app }) => {
    expect(requestApp(req)).toBe(app);
  });

  it('a Service annotated with another slot key than the app is read with its own key', () => {
    const s = annotated(svc, { [SLOT_LABEL_ANNOTATION]: 'env', [ROLE_ANNOTATION]: 'active' });
    const d = denied(
      decide(
        'validate',
        serviceUpdate(
          s,
          edit(s, (c) => (c.spec!.selector = { app: 'shop', env: 'purple' })),
        ),
        view,
        NOW,
        CTX,
      ),
    );
    expect(d.message).toBe('Service shop selects env=purple, a colour that does not exist; app shop has blue and green');
  });
});
