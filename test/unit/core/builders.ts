// Small builders for the objects the core reads: enrolled Deployments and
// Services of one app, the app's resolved view, and AdmissionRequests about
// them. Every builder returns a fresh object; `edit` clones before changing.
import { type AppView, resolveApp } from '../../../src/core/app.ts';
import type { AdmissionContext, Decision } from '../../../src/core/admission/decide.ts';
import type { AdmissionRequest, Operation } from '../../../src/core/admission/review.ts';
import { type PendingFields, recordSeal } from '../../../src/core/pending-change.ts';
import { templateHash } from '../../../src/core/template.ts';
import type { Deployment, HorizontalPodAutoscaler, Scale, Service, UserInfo } from '../../../src/core/k8s-types.ts';
import { APP_LABEL, LIVE_LABEL, ROLE_ANNOTATION, SLOT_LABEL_ANNOTATION } from '../../../src/core/labels.ts';

export const NS = 'prod';
export const APP = 'shop';
export const IMAGE_V1 = 'registry.example/shop:v1';
export const IMAGE_V2 = 'registry.example/shop:v2';
/** A fixed clock for every test that needs one. */
export const NOW = new Date('2030-01-02T03:04:05.000Z');

/** The seal every test's webhook uses (a fixed key), and the webhook's own identity. */
export const SEAL = recordSeal(Buffer.from('kube-bluegreen unit-test record key'));
export const SELF = 'system:serviceaccount:kube-bluegreen:kube-bluegreen';
export const CTX: AdmissionContext = { seal: SEAL, self: SELF };

export const ADMIN: UserInfo = { username: 'alice', uid: 'u-alice', groups: ['devs', 'system:authenticated'] };

export interface DeploymentOptions {
  /** The slot value in the selector and the template; null: no slot label (not enrolled yet). */
  colour: string | null;
  /** The app (label bluegreen.io/app); null: no such label (not enrolled). */
  app?: string | null;
  /** The plain `app` label's value on the object, its selector and its pods (default: the app). */
  appLabel?: string;
  namespace?: string;
  name?: string;
  slotKey?: string;
  image?: string;
  replicas?: number;
  env?: { name: string; value: string }[];
  generation?: number;
  /** Default: fully rolled out and available at `replicas`. */
  status?: NonNullable<Deployment['status']>;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  templateAnnotations?: Record<string, string>;
  /** Selector and template labels besides `app` and the slot. */
  extraLabels?: Record<string, string>;
  /** null: none (an object as a test writes it, before the API server stores it). */
  resourceVersion?: string | null;
  uid?: string | null;
  paused?: boolean;
  live?: boolean;
  /** Pod template labels only, not in the selector. */
  templateLabels?: Record<string, string>;
  /** One container with a name and an image, nothing else (no env, ports or restartPolicy). */
  bare?: boolean;
}

/** A Deployment of one colour, as the API server returns it. */
export function deployment(o: DeploymentOptions): Deployment {
  const app = o.app ?? APP;
  const appLabel = o.appLabel ?? app;
  const slotKey = o.slotKey ?? 'slot';
  const replicas = o.replicas ?? 2;
  const generation = o.generation ?? 1;
  const slot: Record<string, string> = o.colour === null ? {} : { [slotKey]: o.colour };
  const selector = { app: appLabel, ...o.extraLabels, ...slot };
  const podLabels = { app: appLabel, ...o.extraLabels, ...o.templateLabels, ...slot };
  const image = o.image ?? IMAGE_V1;
  const d: Deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: o.name ?? `${app}-${o.colour}`,
      namespace: o.namespace ?? NS,
      ...(o.uid === null ? {} : { uid: o.uid ?? `uid-${app}-${o.colour}` }),
      ...(o.resourceVersion === null ? {} : { resourceVersion: o.resourceVersion ?? '100' }),
      generation,
      labels: {
        app: appLabel,
        ...(o.app === null ? {} : { [APP_LABEL]: app }),
        ...(o.live === undefined ? {} : { [LIVE_LABEL]: String(o.live) }),
        ...o.labels,
      },
      ...(o.annotations ? { annotations: { ...o.annotations } } : {}),
    },
    spec: {
      replicas,
      selector: { matchLabels: selector },
      template: {
        metadata: { labels: podLabels, ...(o.templateAnnotations ? { annotations: { ...o.templateAnnotations } } : {}) },
        spec: o.bare
          ? { containers: [{ name: 'app', image }] }
          : {
              containers: [
                {
                  name: 'app',
                  image,
                  env: (o.env ?? [{ name: 'GREETING', value: 'hello' }]).map((e) => ({ ...e })),
                  ports: [{ containerPort: 8080, protocol: 'TCP' }],
                },
              ],
              restartPolicy: 'Always',
            },
      },
      ...(o.paused ? { paused: true } : {}),
    },
    status: o.status ?? {
      observedGeneration: generation,
      replicas,
      updatedReplicas: replicas,
      readyReplicas: replicas,
      availableReplicas: replicas,
    },
  };
  return d;
}

export interface ServiceOptions {
  /** The app (label bluegreen.io/app); null: no such label (not enrolled). */
  app?: string | null;
  namespace?: string;
  name?: string;
  /** The slot value in the selector; null leaves the slot key out. */
  colour?: string | null;
  slotKey?: string;
  /** Put the slot-label annotation on this Service (only needed for a key other than `slot`). */
  annotateSlotKey?: boolean;
  role?: string;
  annotations?: Record<string, string>;
  extraSelector?: Record<string, string>;
  /** The whole selector, instead of app, extraSelector and the colour. */
  selector?: Record<string, string>;
  /** Labels besides bluegreen.io/app. */
  labels?: Record<string, string>;
  /** null: none (an object as a test writes it, before the API server stores it). */
  resourceVersion?: string | null;
  uid?: string | null;
  deleting?: boolean;
  /** Ports without a protocol, as a manifest usually has them. */
  bare?: boolean;
}

export function service(o: ServiceOptions = {}): Service {
  const app = o.app ?? APP;
  const slotKey = o.slotKey ?? 'slot';
  const annotations: Record<string, string> = { ...o.annotations };
  if (o.role !== undefined) annotations[ROLE_ANNOTATION] = o.role;
  if (o.annotateSlotKey) annotations[SLOT_LABEL_ANNOTATION] = slotKey;
  const colour = o.colour === undefined ? 'blue' : o.colour;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: o.name ?? app,
      namespace: o.namespace ?? NS,
      ...(o.uid === null ? {} : { uid: o.uid ?? `uid-svc-${o.name ?? app}` }),
      ...(o.resourceVersion === null ? {} : { resourceVersion: o.resourceVersion ?? '200' }),
      labels: { ...o.labels, ...(o.app === null ? {} : { [APP_LABEL]: app }) },
      ...(Object.keys(annotations).length ? { annotations } : {}),
      ...(o.deleting ? { deletionTimestamp: '2030-01-01T00:00:00Z' } : {}),
    },
    spec: {
      selector: o.selector ?? { app, ...o.extraSelector, ...(colour === null ? {} : { [slotKey]: colour }) },
      ports: [o.bare ? { port: 80, targetPort: 8080 } : { port: 80, targetPort: 8080, protocol: 'TCP' }],
    },
  };
}

export function viewOf(
  deployments: Deployment[],
  services: Service[],
  o: { app?: string; namespace?: string; hpas?: HorizontalPodAutoscaler[] } = {},
): AppView {
  return resolveApp({ namespace: o.namespace ?? NS, app: o.app ?? APP, deployments, services, ...(o.hpas ? { hpas: o.hpas } : {}) });
}

export interface HpaOptions {
  name?: string;
  /** The Deployment it scales. */
  target: string;
  min?: number;
  max?: number;
  current?: number;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** An autoscaling/v2 HorizontalPodAutoscaler of the app (labelled for it), as the API server returns it. */
export function hpa(o: HpaOptions): HorizontalPodAutoscaler {
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: {
      name: o.name ?? APP,
      namespace: NS,
      uid: `uid-hpa-${o.name ?? APP}`,
      resourceVersion: o.resourceVersion ?? '300',
      labels: { [APP_LABEL]: APP, ...o.labels },
      ...(o.annotations ? { annotations: { ...o.annotations } } : {}),
    },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: o.target },
      minReplicas: o.min ?? 2,
      maxReplicas: o.max ?? 10,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } }],
    },
    status: { currentReplicas: o.current ?? 2, desiredReplicas: o.current ?? 2 },
  };
}

export interface ShopOptions {
  namespace?: string;
  slotKey?: string;
  replicas?: number;
  idleReplicas?: number;
  idleImage?: string;
  extraLabels?: Record<string, string>;
  serviceAnnotations?: Record<string, string>;
}

/** The standard app: shop-blue live (v1), shop-green idle (v1), Service `shop` (role active) selecting blue. */
export function shop(o: ShopOptions = {}) {
  const slotKey = o.slotKey ?? 'slot';
  const common = { namespace: o.namespace ?? NS, slotKey, extraLabels: o.extraLabels ?? {} };
  const blue = deployment({ ...common, colour: 'blue', replicas: o.replicas ?? 2, live: true, resourceVersion: '101' });
  const green = deployment({
    ...common,
    colour: 'green',
    replicas: o.idleReplicas ?? o.replicas ?? 2,
    image: o.idleImage ?? IMAGE_V1,
    live: false,
    resourceVersion: '102',
  });
  const svc = service({
    namespace: common.namespace,
    slotKey,
    annotateSlotKey: slotKey !== 'slot',
    role: 'active',
    extraSelector: o.extraLabels ?? {},
    ...(o.serviceAnnotations ? { annotations: o.serviceAnnotations } : {}),
  });
  const view = viewOf([blue, green], [svc], { namespace: common.namespace });
  return { blue, green, svc, view };
}

/** A deep copy of `o`, changed by `fn`. */
export function edit<T>(o: T, fn: (copy: T) => void): T {
  const c = structuredClone(o);
  fn(c);
  return c;
}

export function withImage(d: Deployment, image: string): Deployment {
  return edit(d, (c) => {
    c.spec!.template!.spec!.containers![0]!.image = image;
  });
}

export function withReplicas(d: Deployment, replicas: number): Deployment {
  return edit(d, (c) => {
    c.spec!.replicas = replicas;
  });
}

let uidCounter = 0;

export interface RequestOptions {
  uid?: string;
  user?: UserInfo;
  dryRun?: boolean;
  namespace?: string;
  /** The request's options.fieldManager (kubectl apply --field-manager, an applier's own name). */
  fieldManager?: string;
}

function base(
  op: Operation,
  kind: { group: string; version: string; kind: string },
  resource: { group: string; version: string; resource: string },
  name: string | undefined,
  o: RequestOptions,
): AdmissionRequest {
  const r: AdmissionRequest = {
    uid: o.uid ?? `req-${++uidCounter}`,
    kind,
    resource,
    operation: op,
    userInfo: o.user ?? ADMIN,
    namespace: o.namespace ?? NS,
    dryRun: o.dryRun ?? false,
  };
  if (name !== undefined) r.name = name;
  if (o.fieldManager !== undefined)
    r.options = { kind: op === 'CREATE' ? 'CreateOptions' : 'PatchOptions', apiVersion: 'meta.k8s.io/v1', fieldManager: o.fieldManager };
  return r;
}

const DEPLOYMENT_GVK = { group: 'apps', version: 'v1', kind: 'Deployment' };
const DEPLOYMENT_GVR = { group: 'apps', version: 'v1', resource: 'deployments' };
const SERVICE_GVK = { group: '', version: 'v1', kind: 'Service' };
const SERVICE_GVR = { group: '', version: 'v1', resource: 'services' };

export function deploymentUpdate(oldD: Deployment, newD: Deployment, o: RequestOptions = {}): AdmissionRequest {
  return { ...base('UPDATE', DEPLOYMENT_GVK, DEPLOYMENT_GVR, newD.metadata.name, o), object: newD, oldObject: oldD };
}

export function deploymentCreate(d: Deployment, o: RequestOptions = {}): AdmissionRequest {
  return { ...base('CREATE', DEPLOYMENT_GVK, DEPLOYMENT_GVR, d.metadata.name, o), object: d };
}

export function deploymentDelete(d: Deployment, o: RequestOptions = {}): AdmissionRequest {
  return { ...base('DELETE', DEPLOYMENT_GVK, DEPLOYMENT_GVR, d.metadata.name, o), oldObject: d };
}

export function scaleObject(name: string, replicas: number | undefined, namespace = NS): Scale {
  return {
    apiVersion: 'autoscaling/v1',
    kind: 'Scale',
    metadata: { name, namespace },
    spec: replicas === undefined ? {} : { replicas },
  };
}

/** An UPDATE of deployments/scale, as `kubectl scale` makes it. `to` undefined is how the API server sends 0 (omitempty). */
export function scaleUpdate(name: string, from: number | undefined, to: number | undefined, o: RequestOptions = {}): AdmissionRequest {
  return {
    ...base('UPDATE', { group: 'autoscaling', version: 'v1', kind: 'Scale' }, DEPLOYMENT_GVR, name, o),
    subResource: 'scale',
    object: scaleObject(name, to, o.namespace),
    oldObject: scaleObject(name, from, o.namespace),
  };
}

export function serviceUpdate(oldS: Service, newS: Service, o: RequestOptions = {}): AdmissionRequest {
  return { ...base('UPDATE', SERVICE_GVK, SERVICE_GVR, newS.metadata.name, o), object: newS, oldObject: oldS };
}

export function serviceCreate(s: Service, o: RequestOptions = {}): AdmissionRequest {
  return { ...base('CREATE', SERVICE_GVK, SERVICE_GVR, s.metadata.name, o), object: s };
}

export function serviceDelete(s: Service, o: RequestOptions = {}): AdmissionRequest {
  return { ...base('DELETE', SERVICE_GVK, SERVICE_GVR, s.metadata.name, o), oldObject: s };
}

/** The Service with its selector's slot value set (null removes the key). */
export function selecting(s: Service, colour: string | null, slotKey = 'slot'): Service {
  return edit(s, (c) => {
    if (colour === null) delete c.spec!.selector![slotKey];
    else c.spec!.selector![slotKey] = colour;
  });
}

export function annotated<T extends Service | Deployment>(s: T, annotations: Record<string, string>): T {
  return edit(s, (c) => {
    c.metadata.annotations = { ...c.metadata.annotations, ...annotations };
  });
}

/** A full AdmissionReview body around a request. */
export function review(request: AdmissionRequest): { apiVersion: string; kind: string; request: AdmissionRequest } {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request };
}

/**
 * The fields of a pending-change record as the webhook writes them: `kubectl set image` to IMAGE_V2
 * on `holder` (the live blue), for green, by alice, now. Overrides for everything else.
 */
export function recordFields(holder: Deployment, o: Partial<PendingFields> = {}): PendingFields {
  const t = withImage(holder, IMAGE_V2).spec!.template!;
  return {
    template: t,
    hash: templateHash(t, 'slot'),
    bases: {},
    from: 'blue',
    to: 'green',
    minReplicas: 2,
    summary: 'image change',
    by: 'alice',
    request: 'r-1',
    at: NOW.toISOString(),
    deployment: holder.metadata.uid ?? '',
    base: holder.metadata.resourceVersion ?? '',
    ...o,
  };
}

/** recordFields, sealed with the tests' key: the annotation value. */
export function sealedRecord(holder: Deployment, o: Partial<PendingFields> = {}): string {
  return SEAL.seal(recordFields(holder, o));
}

/** The decision as a denial, or a thrown error saying what it was instead. */
export function denied(d: Decision): Extract<Decision, { outcome: 'denied' }> {
  if (d.outcome !== 'denied') throw new Error(`expected a denial, got ${d.outcome}: ${JSON.stringify(d)}`);
  return d;
}
