// Records every change to the Deployments, Services and ReplicaSets of one
// namespace (list, then watch), and replays them in the API server's order to
// check the product's central promise: while a colour is live (its app's active
// Service selects it), its Deployment's pod template never changes and it gets
// no new ReplicaSet.
//
// Ordering across kinds: every object lives in the same etcd, whose resourceVersions
// are one global revision counter, so sorting the events of the three watches by
// resourceVersion gives the order in which the API server committed them.
import { KubeClient } from '../../../src/kube/client.ts';
import { canonicalJson } from '../../../src/core/template.ts';
import { clusterEnv, waitFor } from './cluster.ts';

export type Kind = 'Deployment' | 'Service' | 'ReplicaSet';

export interface TimelineEvent {
  rv: number;
  kind: Kind;
  /** INITIAL: present in the first list. */
  type: 'INITIAL' | 'ADDED' | 'MODIFIED' | 'DELETED';
  obj: any;
}

const PATHS: Record<Kind, (ns: string) => string> = {
  Deployment: (ns) => `/apis/apps/v1/namespaces/${ns}/deployments`,
  Service: (ns) => `/api/v1/namespaces/${ns}/services`,
  ReplicaSet: (ns) => `/apis/apps/v1/namespaces/${ns}/replicasets`,
};

export class Timeline {
  private readonly list: TimelineEvent[] = [];
  private readonly latest = new Map<string, number>();
  readonly errors: string[] = [];
  private readonly abort = new AbortController();
  private readonly loops: Promise<void>[] = [];

  private readonly client: KubeClient;
  readonly namespace: string;
  private constructor(client: KubeClient, namespace: string) {
    this.client = client;
    this.namespace = namespace;
  }

  static async start(namespace: string): Promise<Timeline> {
    const t = new Timeline(KubeClient.connect({ kubeconfig: clusterEnv().kubeconfig, timeoutMs: 15_000 }), namespace);
    for (const kind of Object.keys(PATHS) as Kind[]) {
      const l = await t.client.list<any>(PATHS[kind](namespace));
      for (const o of l.items) t.add(kind, 'INITIAL', o);
      t.loops.push(t.watchLoop(kind, l.metadata.resourceVersion!));
    }
    return t;
  }

  private add(kind: Kind, type: TimelineEvent['type'], obj: any) {
    const rv = Number(obj.metadata.resourceVersion);
    this.list.push({ rv, kind, type, obj });
    this.latest.set(`${kind}/${obj.metadata.name}`, rv);
  }

  private async watchLoop(kind: Kind, fromRv: string): Promise<void> {
    let rv = fromRv;
    while (!this.abort.signal.aborted) {
      try {
        rv =
          (await this.client.watch<any>(
            PATHS[kind](this.namespace),
            { resourceVersion: rv, timeoutSeconds: 300 },
            (ev) => {
              if (ev.type === 'BOOKMARK' || ev.type === 'ERROR') return;
              this.add(kind, ev.type, ev.object);
            },
            this.abort.signal,
          )) ?? rv;
      } catch (e) {
        if (this.abort.signal.aborted) return;
        // A gap (410 Gone) would make the replay incomplete: record it, the checks fail on it.
        this.errors.push(`${kind} watch: ${(e as Error).message}`);
        return;
      }
    }
  }

  /** Waits until every object of the namespace, as a fresh list shows it, has been seen at that resourceVersion. */
  async caughtUp(timeoutMs = 15_000): Promise<void> {
    await waitFor(
      async () => {
        for (const kind of Object.keys(PATHS) as Kind[]) {
          const l = await this.client.list<any>(PATHS[kind](this.namespace));
          for (const o of l.items) if ((this.latest.get(`${kind}/${o.metadata.name}`) ?? -1) < Number(o.metadata.resourceVersion)) return false;
        }
        return true;
      },
      { timeoutMs, intervalMs: 100, message: 'the timeline to catch up with the API server' },
    );
  }

  events(): TimelineEvent[] {
    return [...this.list].sort((a, b) => a.rv - b.rv || (a.type === 'INITIAL' ? -1 : 0));
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.allSettled(this.loops);
    this.client.close();
  }
}

export interface TemplateRecord {
  rv: number;
  deployment: string;
  colour: string | undefined;
  images: string[];
  /** Whether the Deployment was its app's live colour when this template was committed. */
  live: boolean;
  template: string;
  /** The Deployment's bluegreen.io/last-change annotation at that commit (which recorded change the reconciler settled there). */
  lastChange?: string;
}

export interface SwitchEvent {
  rv: number;
  app: string;
  from: string | undefined;
  to: string | undefined;
}

export interface Replay {
  /** Every commit that changed a live Deployment's pod template, or created a ReplicaSet for a live Deployment. */
  violations: string[];
  /** Every pod template each Deployment had, in order (initial included). */
  templates: TemplateRecord[];
  /** Each change of an active Service's slot selector. */
  switches: SwitchEvent[];
  /** Every outcome the reconciler wrote (bluegreen.io/last-change), by request uid. */
  outcomes: Map<string, { applied: boolean; reason?: string; deployment: string; rv: number }>;
  /** Requests an outcome names as replaced by its change before they were applied. */
  replaced: Set<string>;
  /** Live colour of each app at the end (from the last Service event). */
  liveAt(rv: number, app: string): string | undefined;
}

/**
 * Replays the timeline. Apps are identified by the label bluegreen.io/app; the
 * active Service of an app is its Service carrying that label (one per app here).
 */
export function replay(events: readonly TimelineEvent[], slotKey = 'slot'): Replay {
  const violations: string[] = [];
  const templates: TemplateRecord[] = [];
  const switches: SwitchEvent[] = [];
  const outcomes: Replay['outcomes'] = new Map();
  const replaced = new Set<string>();
  const liveHistory = new Map<string, { rv: number; colour: string | undefined }[]>();
  const live = new Map<string, string | undefined>();
  const deps = new Map<string, { template: string; colour: string | undefined; app: string | undefined }>();
  const appOf = (o: any): string | undefined => o.metadata?.labels?.['bluegreen.io/app'];
  for (const ev of events) {
    const o = ev.obj;
    const name: string = o.metadata.name;
    if (ev.kind === 'Service') {
      const app = appOf(o);
      if (!app || ev.type === 'DELETED') continue;
      const colour: string | undefined = o.spec?.selector?.[slotKey];
      const before = live.get(app);
      if (ev.type !== 'INITIAL' && before !== colour) switches.push({ rv: ev.rv, app, from: before, to: colour });
      live.set(app, colour);
      const h = liveHistory.get(app) ?? [];
      h.push({ rv: ev.rv, colour });
      liveHistory.set(app, h);
      continue;
    }
    if (ev.kind === 'Deployment') {
      if (ev.type === 'DELETED') {
        deps.delete(name);
        continue;
      }
      const app = appOf(o);
      const lastChange: string | undefined = o.metadata.annotations?.['bluegreen.io/last-change'];
      if (lastChange) {
        try {
          const oc = JSON.parse(lastChange) as { request: string; applied: boolean; reason?: string; replaced?: string[] };
          for (const r of oc.replaced ?? []) replaced.add(r);
          if (!outcomes.has(oc.request))
            outcomes.set(oc.request, { applied: oc.applied, ...(oc.reason ? { reason: oc.reason } : {}), deployment: name, rv: ev.rv });
        } catch {
          /* not ours to judge */
        }
      }
      const template = canonicalJson(o.spec?.template);
      const colour: string | undefined = o.spec?.template?.metadata?.labels?.[slotKey];
      const isLive = !!app && live.get(app) !== undefined && live.get(app) === colour;
      const prev = deps.get(name);
      if (!prev || prev.template !== template) {
        templates.push({
          rv: ev.rv,
          deployment: name,
          colour,
          images: (o.spec?.template?.spec?.containers ?? []).map((c: any) => c.image),
          live: isLive,
          template,
          ...(lastChange ? { lastChange } : {}),
        });
        if (prev && isLive)
          violations.push(
            `rv ${ev.rv}: the pod template of ${name} (live colour ${colour} of app ${app}) changed: ${summarise(prev.template)} -> ${summarise(template)}`,
          );
      }
      deps.set(name, { template, colour, app });
      continue;
    }
    // ReplicaSet
    if (ev.type !== 'ADDED') continue;
    const owner: string | undefined = o.metadata.ownerReferences?.find((r: any) => r.kind === 'Deployment')?.name;
    const d = owner ? deps.get(owner) : undefined;
    if (d?.app && d.colour !== undefined && live.get(d.app) === d.colour)
      violations.push(`rv ${ev.rv}: ReplicaSet ${name} was created for ${owner}, the live colour ${d.colour} of app ${d.app}`);
  }
  return {
    outcomes,
    replaced,
    violations,
    templates,
    switches,
    liveAt: (rv, app) => {
      let c: string | undefined;
      for (const h of liveHistory.get(app) ?? []) if (h.rv <= rv) c = h.colour;
      return c;
    },
  };
}

function summarise(template: string): string {
  try {
    return JSON.stringify(JSON.parse(template).spec.containers.map((c: { image: string }) => c.image));
  } catch {
    return template.slice(0, 120);
  }
}
