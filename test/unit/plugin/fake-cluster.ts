// An in-memory Cluster for unit tests of the plugin's commands (a test double,
// never used outside test/unit): merge and JSON patches with resourceVersion
// preconditions, server-side dry run, AlreadyExists/NotFound/Conflict as
// ApiError, injected failures and admission refusals, and a tiny "controller"
// (run by tick(), which the test context's sleep calls) that makes Deployments
// available and keeps pods and EndpointSlices in line with selectors.
import fjp, { type Operation } from 'fast-json-patch';
import type { Deployment, ObjectMeta, Service } from '../../../src/core/k8s-types.ts';
import { ApiError, type PatchType } from '../../../src/kube/client.ts';
import type { Cluster, EndpointSlice, Pod, WriteOptions } from '../../../plugin/src/cluster.ts';

type Kind = 'deployments' | 'services' | 'pods' | 'endpointslices';
type Obj = { metadata: ObjectMeta; [k: string]: unknown };

export type FakeOp = 'create' | 'patch' | 'delete';
export interface Write {
  op: FakeOp;
  kind: Kind;
  name: string;
  type?: PatchType;
  patch?: unknown;
  dryRun: boolean;
}

export interface Injected {
  op: FakeOp;
  kind: Kind;
  name?: string;
  error: () => Error;
  /** How many more calls fail. */
  times: number;
  /** Called instead of failing, before the write (e.g. someone else changes the object). */
  before?: () => void;
}

export function apiError(status: number, reason: string, message: string): ApiError {
  return new ApiError(status, reason, message, { kind: 'Status', status: 'Failure', reason, message, code: status });
}

export function conflict(name: string): ApiError {
  return apiError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on services "${name}": the object has been modified; please apply your changes to the latest version and try again`,
  );
}

export function webhookDenial(message: string, status = 403): ApiError {
  return apiError(status, 'Forbidden', `admission webhook "validate.bluegreen.io" denied the request: ${message}`);
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function matches(labels: Record<string, string> | undefined, selector: string | undefined): boolean {
  if (!selector) return true;
  const l = labels ?? {};
  for (const raw of selector.split(/,(?![^(]*\))/)) {
    const term = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^(\S+)\s+in\s+\(([^)]*)\)$/.exec(term))) {
      if (
        !m[2]!
          .split(',')
          .map((x) => x.trim())
          .includes(l[m[1]!] ?? '\0')
      )
        return false;
    } else if ((m = /^(\S+?)!=(.*)$/.exec(term))) {
      if (l[m[1]!] === m[2]) return false;
    } else if ((m = /^(\S+?)==?(.*)$/.exec(term))) {
      if (l[m[1]!] !== m[2]) return false;
    } else if (term.startsWith('!')) {
      if (term.slice(1) in l) return false;
    } else if (!(term in l)) return false;
  }
  return true;
}

export interface FakeOptions {
  namespace?: string;
  user?: string;
  /** Run the controller on every tick (default true). */
  controller?: boolean;
}

export class FakeCluster implements Cluster {
  readonly defaultNamespace: string;
  readonly store = new Map<Kind, Map<string, Obj>>();
  readonly writes: Write[] = [];
  readonly injected: Injected[] = [];
  /** Admission: throw to refuse a write (dry run or not). */
  admit: ((w: Write, oldObj: Obj | undefined, newObj: Obj | undefined) => void) | undefined;
  user: string | undefined;
  controller: boolean;
  /** Deployments the controller leaves alone (e.g. a rollout that never finishes). */
  readonly stuck = new Set<string>();
  private rv = 100;
  closed = 0;

  constructor(o: FakeOptions = {}) {
    this.defaultNamespace = o.namespace ?? 'default';
    this.user = o.user;
    this.controller = o.controller ?? true;
    for (const k of ['deployments', 'services', 'pods', 'endpointslices'] as const) this.store.set(k, new Map());
  }

  // ---- seeding and inspection -------------------------------------------------
  put<T extends { metadata: ObjectMeta }>(kind: Kind, obj: T): T {
    const o = structuredClone(obj);
    o.metadata.namespace ??= this.defaultNamespace;
    o.metadata.resourceVersion = String(++this.rv);
    o.metadata.uid ??= `uid-${o.metadata.name}`;
    if (kind === 'deployments') o.metadata.generation ??= 1;
    this.store.get(kind)!.set(`${o.metadata.namespace}/${o.metadata.name}`, o);
    return structuredClone(o);
  }
  peek<T = Obj>(kind: Kind, name: string, ns = this.defaultNamespace): T | undefined {
    const o = this.store.get(kind)!.get(`${ns}/${name}`);
    return o ? (structuredClone(o) as T) : undefined;
  }
  /** A canonical dump of the stored objects (to prove a dry run changed nothing). */
  snapshot(): string {
    const all: Record<string, unknown> = {};
    for (const [k, m] of this.store) for (const [key, o] of m) all[`${k}/${key}`] = o;
    return JSON.stringify(all);
  }
  inject(i: Omit<Injected, 'times'> & { times?: number }): void {
    this.injected.push({ times: 1, ...i });
  }
  realWrites(): Write[] {
    return this.writes.filter((w) => !w.dryRun);
  }

  private failIf(op: FakeOp, kind: Kind, name: string): void {
    const i = this.injected.find((x) => x.op === op && x.kind === kind && (x.name === undefined || x.name === name) && x.times > 0);
    if (!i) return;
    i.times--;
    if (i.before) i.before();
    throw i.error();
  }

  // ---- the controller ----------------------------------------------------------
  /** Deployments become available at their replicas; pods and EndpointSlices follow the selectors. */
  tick(): void {
    if (!this.controller) return;
    const deps = [...this.store.get('deployments')!.values()] as unknown as Deployment[];
    const pods = this.store.get('pods')!;
    pods.clear();
    for (const d of deps) {
      if (this.stuck.has(d.metadata.name ?? '')) continue;
      const n = d.spec?.replicas ?? 1;
      d.status = { observedGeneration: d.metadata.generation, replicas: n, updatedReplicas: n, readyReplicas: n, availableReplicas: n };
    }
    for (const d of deps) {
      const ready = d.status?.readyReplicas ?? 0;
      for (let i = 0; i < (d.status?.replicas ?? 0); i++) {
        const name = `${d.metadata.name}-${i}`;
        pods.set(`${d.metadata.namespace}/${name}`, {
          metadata: { name, namespace: d.metadata.namespace, labels: { ...d.spec?.template?.metadata?.labels } },
          status: { conditions: [{ type: 'Ready', status: i < ready ? 'True' : 'False' }] },
        });
      }
    }
    const slices = this.store.get('endpointslices')!;
    slices.clear();
    for (const svc of this.store.get('services')!.values() as Iterable<Service>) {
      const sel = svc.spec?.selector;
      if (!sel) continue;
      const selector = Object.entries(sel)
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
      const endpoints = [...pods.values()]
        .filter((p) => p.metadata.namespace === svc.metadata.namespace && matches(p.metadata.labels, selector))
        .map((p, i) => ({
          addresses: [`10.0.0.${i + 1}`],
          conditions: { ready: (p as Pod).status?.conditions?.[0]?.status === 'True' },
          targetRef: { kind: 'Pod', name: p.metadata.name },
        }));
      const name = `${svc.metadata.name}-abcde`;
      slices.set(`${svc.metadata.namespace}/${name}`, {
        metadata: { name, namespace: svc.metadata.namespace, labels: { 'kubernetes.io/service-name': svc.metadata.name ?? '' } },
        endpoints,
      });
    }
  }

  // ---- Cluster -----------------------------------------------------------------
  private list<T>(kind: Kind, ns: string | undefined, selector?: string): T[] {
    return [...this.store.get(kind)!.values()]
      .filter((o) => (ns === undefined || o.metadata.namespace === ns) && matches(o.metadata.labels, selector))
      .sort((a, b) => ((a.metadata.name ?? '') < (b.metadata.name ?? '') ? -1 : 1))
      .map((o) => structuredClone(o) as T);
  }
  async listDeployments(ns: string | undefined, labelSelector?: string): Promise<Deployment[]> {
    return this.list<Deployment>('deployments', ns, labelSelector);
  }
  async listServices(ns: string | undefined, labelSelector?: string): Promise<Service[]> {
    return this.list<Service>('services', ns, labelSelector);
  }
  async getDeployment(ns: string, name: string): Promise<Deployment | undefined> {
    return this.peek<Deployment>('deployments', name, ns);
  }
  async getService(ns: string, name: string): Promise<Service | undefined> {
    return this.peek<Service>('services', name, ns);
  }
  async listPods(ns: string, labelSelector: string): Promise<Pod[]> {
    return this.list<Pod>('pods', ns, labelSelector);
  }
  async listEndpointSlices(ns: string, labelSelector: string): Promise<EndpointSlice[]> {
    return this.list<EndpointSlice>('endpointslices', ns, labelSelector);
  }
  async listNamespaces(): Promise<string[]> {
    const set = new Set<string>([this.defaultNamespace]);
    for (const m of this.store.values()) for (const o of m.values()) set.add(o.metadata.namespace ?? '');
    return [...set].sort();
  }
  async whoAmI(): Promise<string | undefined> {
    return this.user;
  }
  close(): void {
    this.closed++;
  }

  async createDeployment(ns: string, body: Deployment, opts?: WriteOptions): Promise<Deployment> {
    const name = body.metadata.name ?? '';
    const w: Write = { op: 'create', kind: 'deployments', name, dryRun: !!opts?.dryRun };
    this.writes.push(w);
    this.failIf('create', 'deployments', name);
    if (this.store.get('deployments')!.has(`${ns}/${name}`)) throw apiError(409, 'AlreadyExists', `deployments.apps "${name}" already exists`);
    const obj = structuredClone(body) as Obj;
    obj.metadata.namespace = ns;
    this.admit?.(w, undefined, obj);
    if (opts?.dryRun) return obj as Deployment;
    return this.put('deployments', obj) as Deployment;
  }

  private patch<T>(kind: Kind, ns: string, name: string, patch: unknown, type: PatchType, opts?: WriteOptions): T {
    const w: Write = { op: 'patch', kind, name, type, patch: structuredClone(patch), dryRun: !!opts?.dryRun };
    this.writes.push(w);
    this.failIf('patch', kind, name);
    const cur = this.store.get(kind)!.get(`${ns}/${name}`);
    if (!cur) throw apiError(404, 'NotFound', `${kind} "${name}" not found`);
    let next: Obj;
    if (type === 'json') {
      try {
        next = fjp.applyPatch(structuredClone(cur), patch as Operation[], true, false).newDocument as Obj;
      } catch (e) {
        throw apiError(422, 'Invalid', `the server rejected our request due to an error in our request: ${(e as Error).message}`);
      }
    } else next = mergePatch(cur, patch) as Obj;
    if (next.metadata.resourceVersion !== cur.metadata.resourceVersion) throw conflict(name);
    this.admit?.(w, cur, next);
    if (opts?.dryRun) return structuredClone(next) as T;
    next.metadata.resourceVersion = String(++this.rv);
    const specChanged = JSON.stringify((cur as { spec?: unknown }).spec) !== JSON.stringify((next as { spec?: unknown }).spec);
    if (kind === 'deployments' && specChanged) next.metadata.generation = (cur.metadata.generation ?? 1) + 1;
    this.store.get(kind)!.set(`${ns}/${name}`, next);
    return structuredClone(next) as T;
  }
  async patchDeployment(ns: string, name: string, patch: unknown, type: PatchType, opts?: WriteOptions): Promise<Deployment> {
    return this.patch<Deployment>('deployments', ns, name, patch, type, opts);
  }
  async patchService(ns: string, name: string, patch: unknown, type: PatchType, opts?: WriteOptions): Promise<Service> {
    return this.patch<Service>('services', ns, name, patch, type, opts);
  }
  async deleteDeployment(ns: string, name: string, opts?: WriteOptions): Promise<void> {
    const w: Write = { op: 'delete', kind: 'deployments', name, dryRun: !!opts?.dryRun };
    this.writes.push(w);
    this.failIf('delete', 'deployments', name);
    if (!this.store.get('deployments')!.has(`${ns}/${name}`)) throw apiError(404, 'NotFound', `deployments.apps "${name}" not found`);
    this.admit?.(w, this.store.get('deployments')!.get(`${ns}/${name}`), undefined);
    if (!opts?.dryRun) this.store.get('deployments')!.delete(`${ns}/${name}`);
  }
}
