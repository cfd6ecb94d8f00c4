// The webhook's view of the cluster: every enrolled Deployment and Service
// (label bluegreen.io/app), kept by list+watch, indexed by namespace/app. A
// request reads one app's resolved view in O(1): no LIST per request, and the
// cost does not grow with the number of apps.
import { type AppView, appNameOf, resolveApp } from '../core/app.ts';
import { DECLARER_ANNOTATIONS } from '../core/gitops.ts';
import type { Deployment, HorizontalPodAutoscaler, ObjectMeta, Service } from '../core/k8s-types.ts';
import { APP_LABEL } from '../core/labels.ts';
import { slimTemplate } from '../core/template.ts';
import { isStatus, type KubeClient, paths } from '../kube/client.ts';
import type { Logger } from './logger.ts';

type Obj = Deployment | Service | HorizontalPodAutoscaler;
/** The kinds the cache keeps: an app's Deployments, Services and HorizontalPodAutoscalers (all labelled for it). */
export type CachedKind = 'deployment' | 'service' | 'hpa';

/** Annotations the decisions read: kube-bluegreen's own. */
const KEPT_ANNOTATION_PREFIX = 'bluegreen.io/';

/**
 * What the cache keeps of an object: only what the decisions read. No managedFields, no
 * last-applied-configuration (a whole copy of the object), no status conditions; of a Service only
 * its selector. The request carries the whole object whenever one is needed.
 */
export function slimObject<T extends Obj>(kind: CachedKind, o: T): T {
  const m = o.metadata;
  let kept: Record<string, string> | undefined;
  for (const k in m.annotations) {
    if (!k.startsWith(KEPT_ANNOTATION_PREFIX) && !DECLARER_ANNOTATIONS.includes(k)) continue;
    (kept ??= {})[k] = m.annotations[k]!;
  }
  const metadata: ObjectMeta = { name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion };
  if (m.generation !== undefined) metadata.generation = m.generation;
  if (m.labels) metadata.labels = m.labels;
  if (kept) metadata.annotations = kept;
  if (m.deletionTimestamp) metadata.deletionTimestamp = m.deletionTimestamp;
  if (kind === 'hpa') {
    // What it scales, its bounds, and what it runs now.
    const h = o as HorizontalPodAutoscaler;
    const spec = h.spec && { scaleTargetRef: h.spec.scaleTargetRef, minReplicas: h.spec.minReplicas, maxReplicas: h.spec.maxReplicas };
    const status = h.status && { currentReplicas: h.status.currentReplicas, desiredReplicas: h.status.desiredReplicas };
    return { metadata, ...(spec ? { spec } : {}), ...(status ? { status } : {}) } as T;
  }
  if (kind === 'service') {
    const sel = (o as Service).spec?.selector;
    return { metadata, ...(sel ? { spec: { selector: sel } } : {}) } as T;
  }
  const d = o as Deployment;
  // The template as its labels and fingerprints: a request carries the whole template whenever
  // one is compared.
  const spec = d.spec && {
    replicas: d.spec.replicas,
    selector: d.spec.selector,
    ...(d.spec.template ? { template: slimTemplate(d.spec.template) } : {}),
    ...(d.spec.paused ? { paused: true } : {}),
  };
  const st = d.status;
  const status = st && {
    observedGeneration: st.observedGeneration,
    replicas: st.replicas,
    updatedReplicas: st.updatedReplicas,
    readyReplicas: st.readyReplicas,
    availableReplicas: st.availableReplicas,
  };
  return { metadata, ...(spec ? { spec } : {}), ...(status ? { status } : {}) } as T;
}

interface AppEntry {
  namespace: string;
  app: string;
  deployments: Map<string, Deployment>;
  services: Map<string, Service>;
  hpas: Map<string, HorizontalPodAutoscaler>;
  view?: AppView;
}

/** The read side used by the admission handler and the reconciler. */
export interface AppCache {
  view(namespace: string, app: string): AppView | undefined;
  appOfDeployment(namespace: string, name: string): string | undefined;
  apps(): Iterable<{ namespace: string; app: string }>;
  readonly synced: boolean;
  /** The watches are delivering now (false while one fails and is retried: the cache may be behind). Absent: true once synced. */
  readonly watching?: boolean;
}

/**
 * The names of one app's objects as the cache files them, for a fresh read by name
 * (WebhookCluster.readApp's `known`); undefined, so that a LIST by label finds them, when the cache
 * has not synced, its watches are not delivering, or it knows nothing of the app.
 */
export function knownObjects(cache: AppCache, namespace: string, app: string): { deployments: string[]; services: string[]; hpas?: string[] } | undefined {
  if (!cache.synced || cache.watching === false) return undefined;
  const objs = cache.view(namespace, app)?.objects;
  if (!objs || (objs.deployments.length === 0 && objs.services.length === 0)) return undefined;
  const names = (xs: readonly { metadata: { name?: string } }[]) => xs.map((x) => x.metadata.name ?? '').filter(Boolean);
  const hpas = names(objs.hpas ?? []);
  return { deployments: names(objs.deployments), services: names(objs.services), ...(hpas.length ? { hpas } : {}) };
}

export class EnrolledObjectStore implements AppCache {
  private readonly entries = new Map<string, AppEntry>();
  /** kind/namespace/name -> app: where each object is filed (deployments/scale requests carry no labels). */
  private readonly filedUnder = new Map<string, string>();
  private readonly listeners = new Set<(namespace: string, app: string) => void>();
  synced = false;
  /** Set by the process to its reflectors' health (see AppCache.watching). */
  watchingNow: () => boolean = () => true;
  private readonly slim: boolean;

  /** @param o.slim keep only what the decisions read (default); false keeps whole objects (the benchmark's before). */
  constructor(o: { slim?: boolean } = {}) {
    this.slim = o.slim ?? true;
  }

  get watching(): boolean {
    return this.watchingNow();
  }

  private static key(ns: string, app: string) {
    return `${ns}/${app}`;
  }

  onChange(fn: (namespace: string, app: string) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private touched(e: AppEntry) {
    e.view = undefined;
    if (e.deployments.size === 0 && e.services.size === 0 && e.hpas.size === 0) this.entries.delete(EnrolledObjectStore.key(e.namespace, e.app));
    for (const fn of this.listeners) fn(e.namespace, e.app);
  }

  private mapOf(e: AppEntry, kind: CachedKind): Map<string, Obj> {
    return kind === 'deployment' ? e.deployments : kind === 'service' ? e.services : e.hpas;
  }

  private drop(kind: CachedKind, ns: string, name: string) {
    const id = `${kind}/${ns}/${name}`;
    const app = this.filedUnder.get(id);
    if (app === undefined) return;
    this.filedUnder.delete(id);
    const e = this.entries.get(EnrolledObjectStore.key(ns, app));
    if (e && this.mapOf(e, kind).delete(name)) this.touched(e);
  }

  upsert(kind: CachedKind, obj: Obj): void {
    const ns = obj.metadata.namespace ?? '';
    const name = obj.metadata.name ?? '';
    const app = appNameOf(obj);
    const id = `${kind}/${ns}/${name}`;
    if (this.filedUnder.get(id) !== app) this.drop(kind, ns, name);
    if (!app) return;
    const k = EnrolledObjectStore.key(ns, app);
    let e = this.entries.get(k);
    if (!e) {
      e = { namespace: ns, app, deployments: new Map(), services: new Map(), hpas: new Map() };
      this.entries.set(k, e);
    }
    this.mapOf(e, kind).set(name, this.slim ? slimObject(kind, obj) : obj);
    this.filedUnder.set(id, app);
    this.touched(e);
  }

  remove(kind: CachedKind, obj: Obj): void {
    this.drop(kind, obj.metadata.namespace ?? '', obj.metadata.name ?? '');
  }

  /** After a (re)list: forget what the list no longer has, file what it has. */
  replaceAll(kind: CachedKind, objs: Obj[]): void {
    const keep = new Set(objs.map((o) => `${kind}/${o.metadata.namespace}/${o.metadata.name}`));
    for (const id of [...this.filedUnder.keys()]) {
      if (!id.startsWith(`${kind}/`) || keep.has(id)) continue;
      const [, ns, name] = id.split('/') as [string, string, string];
      this.drop(kind, ns, name);
    }
    for (const o of objs) this.upsert(kind, o);
  }

  view(namespace: string, app: string): AppView | undefined {
    const e = this.entries.get(EnrolledObjectStore.key(namespace, app));
    if (!e) return undefined;
    e.view ??= resolveApp({
      namespace,
      app,
      deployments: [...e.deployments.values()],
      services: [...e.services.values()],
      ...(e.hpas.size ? { hpas: [...e.hpas.values()] } : {}),
    });
    return e.view;
  }

  appOfDeployment(namespace: string, name: string): string | undefined {
    return this.filedUnder.get(`deployment/${namespace}/${name}`);
  }

  *apps(): Iterable<{ namespace: string; app: string }> {
    for (const e of this.entries.values()) yield { namespace: e.namespace, app: e.app };
  }

  get size(): number {
    return this.entries.size;
  }
}

/** List, then watch from the list's resourceVersion; relist on 410 Gone; back off on errors. */
export class Reflector {
  private readonly abort = new AbortController();
  private syncedOnce = false;
  /** Since when list/watch has been failing (undefined: healthy). */
  private failingSince: number | undefined;
  /** A watch that delivers nothing (not even a bookmark) for this long is presumed hung and restarted. */
  private readonly idleWatchMs: number;
  private readonly firstSync: Promise<void>;
  private resolveFirst!: () => void;
  private readonly client: KubeClient;
  private readonly path: string;
  private readonly kind: CachedKind;
  private readonly store: EnrolledObjectStore;
  private readonly log: Logger;
  private readonly watchTimeoutSeconds: number;

  constructor(client: KubeClient, kind: CachedKind, store: EnrolledObjectStore, log: Logger, o: { watchTimeoutSeconds?: number } = {}) {
    this.watchTimeoutSeconds = o.watchTimeoutSeconds ?? 240;
    this.idleWatchMs = (this.watchTimeoutSeconds + 30) * 1000;
    this.client = client;
    this.kind = kind;
    this.store = store;
    this.log = log.child({ reflector: kind });
    this.path = kind === 'deployment' ? paths.deployments() : kind === 'service' ? paths.services() : paths.horizontalPodAutoscalers();
    this.firstSync = new Promise((r) => (this.resolveFirst = r));
  }

  get synced(): boolean {
    return this.syncedOnce;
  }

  /** Synced, and list/watch working now (a failing one is retried with backoff; the cache may be behind meanwhile). */
  get healthy(): boolean {
    return this.syncedOnce && this.failingSince === undefined;
  }

  start(): Promise<void> {
    void this.run();
    return this.firstSync;
  }

  stop(): void {
    this.abort.abort();
  }

  private async run(): Promise<void> {
    let backoff = 250;
    let rv: string | undefined;
    while (!this.abort.signal.aborted) {
      try {
        if (rv === undefined) {
          const list = await this.client.list<Obj>(this.path, { labelSelector: APP_LABEL });
          this.store.replaceAll(this.kind, list.items);
          rv = list.metadata.resourceVersion;
          if (!this.syncedOnce) {
            this.syncedOnce = true;
            this.resolveFirst();
          }
          this.log.debug({ count: list.items.length, resourceVersion: rv }, 'listed');
        }
        this.failingSince = undefined;
        const hung = new AbortController();
        let idle = setTimeout(() => hung.abort(), this.idleWatchMs);
        try {
          rv = await this.client.watch<Obj>(
            this.path,
            { labelSelector: APP_LABEL, resourceVersion: rv, timeoutSeconds: this.watchTimeoutSeconds },
            (ev) => {
              clearTimeout(idle);
              idle = setTimeout(() => hung.abort(), this.idleWatchMs);
              if (ev.type === 'BOOKMARK') return;
              if (ev.type === 'DELETED') this.store.remove(this.kind, ev.object);
              else this.store.upsert(this.kind, ev.object);
            },
            AbortSignal.any([this.abort.signal, hung.signal]),
          );
        } finally {
          clearTimeout(idle);
        }
        if (hung.signal.aborted && !this.abort.signal.aborted) {
          this.log.warn({ idleSeconds: this.idleWatchMs / 1000 }, 'watch delivered nothing for too long; listing again');
          rv = undefined;
        }
        backoff = 250;
      } catch (e) {
        if (this.abort.signal.aborted) return;
        if (isStatus(e, 410)) {
          rv = undefined;
          continue;
        }
        this.failingSince ??= Date.now();
        this.log.warn({ err: (e as Error).message, retryInMs: backoff }, 'list/watch failed; retrying');
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 10_000);
        rv = undefined;
      }
    }
  }
}
