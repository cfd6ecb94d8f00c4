// An in-memory WebhookCluster with the API server's preconditions where the
// webhook relies on them: resourceVersion on merge patches (409), JSON-patch
// `test` operations (422), generation bumped on spec changes, dry runs that
// store nothing. Every call is logged; faults can be injected per method.
import fjp from 'fast-json-patch';
import type { AppObjects } from '../../../src/core/app.ts';
import type { CronJobTemplate, JobOutcome } from '../../../src/core/checks.ts';
import type { Deployment, HorizontalPodAutoscaler, Service, UserInfo } from '../../../src/core/k8s-types.ts';
import { APP_LABEL } from '../../../src/core/labels.ts';
import type { PatchType } from '../../../src/kube/client.ts';
import { ApiError } from '../../../src/kube/errors.ts';
import type { CallOptions, KubeEvent, Lease, ReadAppOptions, Secret, WebhookCluster } from '../../../src/webhook/cluster.ts';
import { jsonEqual } from '../../../src/core/template.ts';

export const FAKE_SELF = 'system:serviceaccount:kube-bluegreen:kube-bluegreen';

type Obj = { metadata: { name?: string; namespace?: string; resourceVersion?: string; generation?: number; labels?: Record<string, string> }; spec?: unknown };

function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export interface Call {
  method: string;
  namespace?: string;
  name?: string;
  dryRun?: boolean;
  patch?: unknown;
  /** readApp: the names read by GET (absent: a LIST by label). */
  known?: { deployments: readonly string[]; services: readonly string[]; hpas?: readonly string[] };
}

export class FakeCluster implements WebhookCluster {
  readonly deployments = new Map<string, Deployment>();
  readonly services = new Map<string, Service>();
  readonly hpas = new Map<string, HorizontalPodAutoscaler>();
  readonly leases = new Map<string, Lease>();
  readonly secrets = new Map<string, Secret>();
  readonly events: KubeEvent[] = [];
  readonly calls: Call[] = [];
  /** Who may patch which Deployment (SubjectAccessReview). Default: everyone. */
  mayPatch: (u: UserInfo, namespace: string, name: string) => boolean = () => true;
  /** Refuses a write as invalid (422), as the API server's validation would. */
  validate: (kind: 'deployment' | 'service' | 'hpa', obj: Obj) => string | undefined = () => undefined;
  /** Makes the next calls of a method fail (or hang until the signal aborts: 'hang'). */
  private faults = new Map<string, (Error | 'hang')[]>();
  private rv = 100;

  private key(ns: string, name: string) {
    return `${ns}/${name}`;
  }

  private nextRv(): string {
    return String(++this.rv);
  }

  put(kind: 'deployment', obj: Deployment): Deployment;
  put(kind: 'service', obj: Service): Service;
  put(kind: 'hpa', obj: HorizontalPodAutoscaler): HorizontalPodAutoscaler;
  put(kind: 'deployment' | 'service' | 'hpa', obj: Deployment | Service | HorizontalPodAutoscaler): Deployment | Service | HorizontalPodAutoscaler {
    const o = structuredClone(obj);
    o.metadata.resourceVersion = this.nextRv();
    const map = kind === 'deployment' ? this.deployments : kind === 'service' ? this.services : this.hpas;
    map.set(this.key(o.metadata.namespace ?? '', o.metadata.name ?? ''), o as Deployment & Service & HorizontalPodAutoscaler);
    return structuredClone(o);
  }

  getHpa(ns: string, name: string): HorizontalPodAutoscaler | undefined {
    const h = this.hpas.get(this.key(ns, name));
    return h && structuredClone(h);
  }

  getDeployment(ns: string, name: string): Deployment | undefined {
    const d = this.deployments.get(this.key(ns, name));
    return d && structuredClone(d);
  }
  getService(ns: string, name: string): Service | undefined {
    const s = this.services.get(this.key(ns, name));
    return s && structuredClone(s);
  }

  fail(method: string, ...errs: (Error | 'hang')[]): void {
    this.faults.set(method, [...(this.faults.get(method) ?? []), ...errs]);
  }

  private async fault(method: string, signal?: AbortSignal): Promise<void> {
    const list = this.faults.get(method);
    const f = list?.shift();
    if (!f) return;
    if (f === 'hang')
      await new Promise((_, rej) => {
        const abort = () => rej(new Error('aborted'));
        if (signal?.aborted) abort();
        signal?.addEventListener('abort', abort);
      });
    else throw f;
  }

  async readApp(namespace: string, app: string, o?: ReadAppOptions): Promise<AppObjects> {
    this.calls.push({ method: 'readApp', namespace, name: app, ...(o?.known ? { known: structuredClone(o.known) } : {}) });
    await this.fault('readApp', o?.signal);
    // By label (a LIST), or only the objects named (a GET each): the current state of those still labelled for the app.
    const named = (kind: 'deployments' | 'services' | 'hpas', x: Obj) => !o?.known || (o.known[kind] ?? []).includes(x.metadata.name ?? '');
    const mine = <T extends Obj>(kind: 'deployments' | 'services' | 'hpas', m: Map<string, T>) =>
      [...m.values()]
        .filter((x) => x.metadata.namespace === namespace && x.metadata.labels?.[APP_LABEL] === app && named(kind, x))
        .map((x) => structuredClone(x));
    return { namespace, app, deployments: mine('deployments', this.deployments), services: mine('services', this.services), hpas: mine('hpas', this.hpas) };
  }

  private patch<T extends Obj>(
    kind: 'deployment' | 'service' | 'hpa',
    map: Map<string, T>,
    ns: string,
    name: string,
    patch: unknown,
    type: PatchType,
    o?: CallOptions,
  ): T {
    const cur = map.get(this.key(ns, name));
    if (!cur) throw new ApiError(404, 'NotFound', `${kind}s "${name}" not found`, {});
    let next: T;
    if (type === 'json') {
      try {
        next = fjp.applyPatch(structuredClone(cur), patch as fjp.Operation[], true, false).newDocument;
      } catch (e) {
        const err = e as Error & { name?: string };
        // As the API server answers a patch it cannot apply: a generic message, the cause in details.
        const cause = err.name === 'TEST_OPERATION_FAILED' ? 'testing value failed: test failed' : err.message;
        throw new ApiError(422, '', 'the server rejected our request due to an error in our request', {
          details: { causes: [{ reason: 'UnexpectedServerResponse', message: cause }] },
        });
      }
    } else {
      const want = (patch as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion;
      if (want !== undefined && want !== cur.metadata.resourceVersion)
        throw new ApiError(
          409,
          'Conflict',
          `Operation cannot be fulfilled on ${kind}s "${name}": the object has been modified; please apply your changes to the latest version and try again`,
          {},
        );
      next = mergePatch(structuredClone(cur), patch) as T;
    }
    const invalid = this.validate(kind, next);
    if (invalid)
      throw new ApiError(
        422,
        'Invalid',
        `${kind === 'deployment' ? 'Deployment' : kind === 'service' ? 'Service' : 'HorizontalPodAutoscaler'}.${kind === 'hpa' ? 'autoscaling' : 'apps'} "${name}" is invalid: ${invalid}`,
        {},
      );
    if (!jsonEqual(cur.spec ?? null, next.spec ?? null)) next.metadata.generation = (cur.metadata.generation ?? 1) + 1;
    if (o?.dryRun) return structuredClone({ ...next, metadata: { ...next.metadata, resourceVersion: cur.metadata.resourceVersion } });
    next.metadata.resourceVersion = this.nextRv();
    map.set(this.key(ns, name), next);
    return structuredClone(next);
  }

  async patchDeployment(ns: string, name: string, patch: unknown, type: PatchType, o?: CallOptions): Promise<Deployment> {
    this.calls.push({ method: 'patchDeployment', namespace: ns, name, patch, ...(o?.dryRun ? { dryRun: true } : {}) });
    await this.fault('patchDeployment', o?.signal);
    return this.patch('deployment', this.deployments, ns, name, patch, type, o);
  }

  async patchService(ns: string, name: string, patch: unknown, type: PatchType, o?: CallOptions): Promise<Service> {
    this.calls.push({ method: 'patchService', namespace: ns, name, patch, ...(o?.dryRun ? { dryRun: true } : {}) });
    await this.fault('patchService', o?.signal);
    return this.patch('service', this.services, ns, name, patch, type, o);
  }

  async patchHpa(ns: string, name: string, patch: unknown, type: PatchType, o?: CallOptions): Promise<HorizontalPodAutoscaler> {
    this.calls.push({ method: 'patchHpa', namespace: ns, name, patch, ...(o?.dryRun ? { dryRun: true } : {}) });
    await this.fault('patchHpa', o?.signal);
    return this.patch('hpa', this.hpas, ns, name, patch, type, o);
  }

  async mayPatchDeployment(u: UserInfo, ns: string, name: string, o?: CallOptions): Promise<{ allowed: boolean; reason?: string }> {
    this.calls.push({ method: 'mayPatchDeployment', namespace: ns, name });
    await this.fault('mayPatchDeployment', o?.signal);
    return { allowed: this.mayPatch(u, ns, name) };
  }

  async createEvent(ns: string, e: KubeEvent): Promise<void> {
    this.calls.push({ method: 'createEvent', namespace: ns, name: e.involvedObject.name });
    await this.fault('createEvent');
    this.events.push(e);
  }

  async getLease(ns: string, name: string): Promise<Lease | undefined> {
    await this.fault('getLease');
    const l = this.leases.get(this.key(ns, name));
    return l && structuredClone(l);
  }
  async createLease(ns: string, l: Lease): Promise<Lease> {
    await this.fault('createLease');
    const k = this.key(ns, l.metadata.name);
    if (this.leases.has(k)) throw new ApiError(409, 'AlreadyExists', `leases "${l.metadata.name}" already exists`, {});
    const stored = { ...structuredClone(l), metadata: { ...l.metadata, resourceVersion: this.nextRv() } };
    this.leases.set(k, stored);
    return structuredClone(stored);
  }
  async replaceLease(ns: string, l: Lease): Promise<Lease> {
    await this.fault('replaceLease');
    const k = this.key(ns, l.metadata.name);
    const cur = this.leases.get(k);
    if (!cur) throw new ApiError(404, 'NotFound', 'not found', {});
    if (l.metadata.resourceVersion !== cur.metadata.resourceVersion) throw new ApiError(409, 'Conflict', 'the object has been modified', {});
    const stored = { ...structuredClone(l), metadata: { ...l.metadata, resourceVersion: this.nextRv() } };
    this.leases.set(k, stored);
    return structuredClone(stored);
  }

  async getSecret(ns: string, name: string): Promise<Secret | undefined> {
    await this.fault('getSecret');
    const s = this.secrets.get(this.key(ns, name));
    return s && structuredClone(s);
  }
  async createSecret(ns: string, s: Secret): Promise<Secret> {
    await this.fault('createSecret');
    const k = this.key(ns, s.metadata.name);
    if (this.secrets.has(k)) throw new ApiError(409, 'AlreadyExists', 'already exists', {});
    this.secrets.set(k, structuredClone(s));
    return structuredClone(s);
  }

  async whoAmI(): Promise<string> {
    return FAKE_SELF;
  }

  /** Release gates: CronJob templates by namespace/name, the Jobs created, and each Job's outcome (set by the test). */
  readonly cronJobs = new Map<string, CronJobTemplate>();
  readonly jobs = new Map<string, Record<string, unknown>>();
  readonly jobOutcomes = new Map<string, JobOutcome>();
  async getCronJob(ns: string, name: string): Promise<CronJobTemplate | undefined> {
    this.calls.push({ method: 'getCronJob', namespace: ns, name });
    const c = this.cronJobs.get(this.key(ns, name));
    return c && structuredClone(c);
  }
  async createJob(ns: string, job: Record<string, unknown>): Promise<void> {
    const name = (job.metadata as { name: string }).name;
    this.calls.push({ method: 'createJob', namespace: ns, name });
    if (this.jobs.has(this.key(ns, name))) throw new ApiError(409, 'AlreadyExists', 'already exists', {});
    this.jobs.set(this.key(ns, name), structuredClone(job));
  }
  async jobOutcome(ns: string, name: string): Promise<JobOutcome | null> {
    this.calls.push({ method: 'jobOutcome', namespace: ns, name });
    if (!this.jobs.has(this.key(ns, name))) return null;
    return this.jobOutcomes.get(this.key(ns, name)) ?? { state: 'running' };
  }
}
