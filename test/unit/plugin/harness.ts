// Drives `kubectl bg` in-process against a FakeCluster with a fixed clock.
import type { Deployment, Service } from '../../../src/core/k8s-types.ts';
import type { SwitchRecord } from '../../../src/core/history.ts';
import { type Colour, HISTORY_ANNOTATION, SLOT_LABEL_ANNOTATION } from '../../../src/core/labels.ts';
import { runCli } from '../../../plugin/src/cli.ts';
import type { ConnectOptions, Context } from '../../../plugin/src/context.ts';
import { FakeCluster } from './fake-cluster.ts';
import { deployment, service } from '../core/builders.ts';

export const T0 = '2026-01-01T12:00:00.000Z';

export interface HarnessOptions {
  cluster?: FakeCluster;
  isTTY?: boolean;
  env?: Record<string, string | undefined>;
  now?: string;
  /** Abort the context's signal after this many sleeps (ends --watch). */
  abortAfterSleeps?: number;
  /** Called at every sleep, after the clock advanced and before the controller ticks. */
  onSleep?: (n: number) => void;
}

export interface RunResult {
  code: number;
  out: string;
  err: string;
}

export function harness(o: HarnessOptions = {}) {
  const cluster = o.cluster ?? new FakeCluster();
  let now = Date.parse(o.now ?? T0);
  let sleeps = 0;
  const out: string[] = [];
  const err: string[] = [];
  const connects: ConnectOptions[] = [];
  let ac = new AbortController();
  const ctx: Context = {
    out: { write: (s: string) => out.push(s) },
    err: { write: (s: string) => err.push(s) },
    env: o.env ?? {},
    isTTY: o.isTTY ?? false,
    now: () => new Date(now),
    sleep: async (ms) => {
      now += ms;
      sleeps++;
      o.onSleep?.(sleeps);
      cluster.tick();
      if (o.abortAfterSleeps !== undefined && sleeps >= o.abortAfterSleeps) ac.abort();
    },
    connect: async (c) => {
      connects.push(c);
      return cluster;
    },
    get signal() {
      return ac.signal;
    },
  };
  return {
    cluster,
    ctx,
    connects,
    get sleeps() {
      return sleeps;
    },
    advance(ms: number) {
      now += ms;
    },
    async run(...argv: string[]): Promise<RunResult> {
      out.length = 0;
      err.length = 0;
      sleeps = 0;
      ac = new AbortController();
      const code = await runCli(argv, ctx);
      return { code, out: out.join(''), err: err.join('') };
    },
  };
}

// ---- fixtures --------------------------------------------------------------------

export interface DepOptions {
  app?: string | null;
  colour?: Colour | null;
  slotKey?: string;
  image?: string;
  replicas?: number;
  /** Ready/available pods (default: all). */
  ready?: number;
  /** Pods on the current template (default: all). */
  updated?: number;
  live?: boolean | null;
  /** The controller has not seen the latest spec. */
  unobserved?: boolean;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  podLabels?: Record<string, string>;
}

export interface SvcOptions {
  app?: string | null;
  selector?: Record<string, string>;
  role?: 'active' | 'preview' | null;
  slotKey?: string;
  history?: SwitchRecord[];
  annotations?: Record<string, string>;
}

/** The usual enrolled app: shop-blue live (v1), shop-green idle with `green` options. */
export function seedShop(c: FakeCluster, o: { green?: DepOptions; blue?: DepOptions; service?: SvcOptions; preview?: boolean } = {}): void {
  // A Deployment seeded mid-rollout stays so: the fake controller leaves it alone.
  const partial = (d?: DepOptions) => d && (d.ready !== undefined || d.updated !== undefined || d.unobserved);
  if (partial(o.blue)) c.stuck.add('shop-blue');
  if (partial(o.green)) c.stuck.add('shop-green');
  c.put('deployments', dep('shop-blue', { colour: 'blue', ...o.blue }));
  c.put('deployments', dep('shop-green', { colour: 'green', image: 'registry.example/shop:v2', ...o.green }));
  c.put('services', svc('shop', o.service));
  if (o.preview) c.put('services', svc('shop-preview', { role: 'preview', selector: { app: 'shop', slot: 'green' } }));
  c.tick();
}

/**
 * A Deployment of the plugin's tests: the core builder (test/unit/core/builders.ts) with what
 * kubectl bg sees in namespace default: 3 replicas, generation 2, one bare container, no uid or
 * resourceVersion; not enrolled with app: null, no colour with colour: null; blue live and green
 * idle unless told; a rollout in progress with ready, updated or unobserved.
 */
export function dep(name: string, o: DepOptions = {}): Deployment {
  const key = o.slotKey ?? 'slot';
  const replicas = o.replicas ?? 3;
  const ready = o.ready ?? replicas;
  const enrolled = o.app !== null;
  const live =
    o.live === true || (o.live === undefined && o.colour === 'blue' && enrolled)
      ? true
      : o.live === false || (o.live === undefined && o.colour === 'green' && enrolled)
        ? false
        : undefined;
  const annotations = { ...o.annotations, ...(key !== 'slot' && enrolled ? { [SLOT_LABEL_ANNOTATION]: key } : {}) };
  return deployment({
    name,
    namespace: 'default',
    colour: o.colour ?? null,
    app: o.app === null ? null : (o.app ?? 'shop'),
    appLabel: 'shop',
    slotKey: key,
    image: o.image ?? 'registry.example/shop:v1',
    replicas,
    generation: 2,
    uid: null,
    resourceVersion: null,
    bare: true,
    ...(o.podLabels ? { templateLabels: o.podLabels } : {}),
    ...(o.labels ? { labels: o.labels } : {}),
    ...(live === undefined ? {} : { live }),
    ...(Object.keys(annotations).length ? { annotations } : {}),
    status: { observedGeneration: o.unobserved ? 1 : 2, replicas, updatedReplicas: o.updated ?? replicas, readyReplicas: ready, availableReplicas: ready },
  });
}

/** A Service of the plugin's tests: the core builder, in namespace default, active unless told (role: null: none), selecting slot=blue. */
export function svc(name: string, o: SvcOptions = {}): Service {
  const annotations: Record<string, string> = { ...o.annotations };
  if (o.slotKey && o.slotKey !== 'slot') annotations[SLOT_LABEL_ANNOTATION] = o.slotKey;
  if (o.history) annotations[HISTORY_ANNOTATION] = JSON.stringify(o.history);
  const role = o.role === null ? undefined : (o.role ?? (o.app !== null ? 'active' : undefined));
  return service({
    name,
    namespace: 'default',
    app: o.app === null ? null : (o.app ?? 'shop'),
    labels: { app: 'shop' },
    ...(role ? { role } : {}),
    ...(Object.keys(annotations).length ? { annotations } : {}),
    selector: o.selector ?? { app: 'shop', slot: 'blue' },
    uid: null,
    resourceVersion: null,
    bare: true,
  });
}
