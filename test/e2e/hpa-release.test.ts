// A whole release of an app with a HorizontalPodAutoscaler, with the real HPA controller of the
// local control plane (synced every 2 s) on kwok's emulated usage scraped by metrics-server
// (local-cluster/NOTES.md): the app's one HPA follows the live colour. set image (redirected to the
// idle colour); the HPA scales the live colour up under load and the reconciler raises the idle
// colour to match; the HPA's (shortened) stabilization window passes and the idle colour keeps
// its capacity; `kubectl bg switch` succeeds without --force; the HPA is pointed at the new live
// colour; the old colour is scaled down after its warm period; nothing flaps.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyApps, rolledOut } from './helpers/apps.ts';
import { apply, createNamespace, kubectlJson, kubectlOk, type TestNamespace, waitFor } from './helpers/cluster.ts';
import { kwokPodMetadata, milliCpu, podMetrics, setPodUsage } from './helpers/kwok.ts';
import { kubectlBg } from './helpers/plugin-cli.ts';
import { Timeline } from './helpers/timeline.ts';
import { type RunningWebhook, startWebhook } from './helpers/webhook.ts';

interface Dep {
  metadata: { generation: number; labels?: Record<string, string> };
  spec: { replicas: number; template: { spec: { containers: { image: string }[] } } };
  status: { replicas?: number; readyReplicas?: number; availableReplicas?: number; updatedReplicas?: number; observedGeneration?: number };
}
interface Hpa {
  metadata: { resourceVersion: string };
  spec: { scaleTargetRef: { name: string }; minReplicas: number; maxReplicas: number };
  status: { currentReplicas?: number; desiredReplicas?: number; conditions?: { type: string; status: string; reason?: string }[] };
}
interface EventList {
  items: { reason: string; message: string; involvedObject: { kind: string; name: string } }[];
}

const STABILIZATION_S = 5;
const SCALE_DOWN_DELAY_S = 15;
const MIN = 2;
const MAX = 4;

function colour(c: 'blue' | 'green', namespace: string) {
  // Every pod requests 100m; kwok plays 20m of usage unless a test sets more on running pods.
  const meta = kwokPodMetadata({ cpu: '20m', memory: '40Mi' });
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: `shop-${c}`, namespace, labels: { 'bluegreen.io/app': 'shop', 'bluegreen.io/live': String(c === 'blue'), app: 'shop' } },
    spec: {
      replicas: MIN,
      selector: { matchLabels: { app: 'shop', slot: c } },
      template: {
        metadata: { labels: { app: 'shop', slot: c }, annotations: meta.annotations },
        spec: { containers: [{ name: 'app', image: 'registry.example/shop:v1', resources: { requests: { cpu: '100m', memory: '64Mi' } } }] },
      },
    },
  };
}

function app(namespace: string): object[] {
  return [
    colour('blue', namespace),
    colour('green', namespace),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: 'shop',
        namespace,
        labels: { 'bluegreen.io/app': 'shop' },
        annotations: { 'bluegreen.io/role': 'active', 'bluegreen.io/scale-down-delay': `${SCALE_DOWN_DELAY_S}s` },
      },
      spec: { selector: { app: 'shop', slot: 'blue' }, ports: [{ port: 80, targetPort: 8080 }] },
    },
  ];
}

/** The app's one HPA, labelled for the app like its other objects, on the live colour. */
function hpa(namespace: string) {
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name: 'shop', namespace, labels: { 'bluegreen.io/app': 'shop' } },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'shop-blue' },
      minReplicas: MIN,
      maxReplicas: MAX,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } }],
      behavior: {
        scaleUp: { stabilizationWindowSeconds: 0 },
        scaleDown: { stabilizationWindowSeconds: STABILIZATION_S, policies: [{ type: 'Percent', value: 100, periodSeconds: 5 }] },
      },
    },
  };
}

let ns: TestNamespace;
let wh: RunningWebhook;
let timeline: Timeline;
const t0 = Date.now();
const at = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
const figures: string[] = [];
const note = (s: string) => {
  figures.push(`${at()} ${s}`);
  console.log(`[hpa-release] ${at()} ${s}`);
};
const dep = (name: string) => kubectlJson<Dep>(['-n', ns.name, 'get', 'deployment', name]);
const getHpa = () => kubectlJson<Hpa>(['-n', ns.name, 'get', 'hpa', 'shop']);
const ready = (d: Dep, n: number) =>
  d.spec.replicas === n &&
  d.status.readyReplicas === n &&
  d.status.availableReplicas === n &&
  d.status.updatedReplicas === n &&
  (d.status.observedGeneration ?? 0) >= d.metadata.generation;

/** Each Deployment's spec.replicas as the API server committed them, consecutive repeats folded. */
function replicasTimeline(name: string): number[] {
  const out: number[] = [];
  for (const e of timeline.events()) {
    if (e.kind !== 'Deployment' || e.obj.metadata.name !== name || e.type === 'DELETED') continue;
    const n = e.obj.spec.replicas as number;
    if (out.at(-1) !== n) out.push(n);
  }
  return out;
}

/** Waits until every pod of the selector reports at least `m` millicores through metrics.k8s.io (what the HPA controller reads). */
async function metricsShow(selector: string, count: number, m: number): Promise<void> {
  await waitFor(
    async () => {
      const pods = await podMetrics(ns.name, selector);
      return pods.length === count && pods.every((p) => p.containers.every((c) => milliCpu(c.usage.cpu) >= m));
    },
    { timeoutMs: 90_000, intervalMs: 1_000, message: `metrics.k8s.io shows ${count} pods of ${selector} using at least ${m}m` },
  );
}

beforeAll(async () => {
  ns = await createNamespace('e2e-hpa-release');
  await applyApps(ns.name, app(ns.name));
  timeline = await Timeline.start(ns.name);
  wh = await startWebhook({ namespace: ns.name, configName: 'hpa' });
  await apply(hpa(ns.name));
}, 180_000);

afterAll(async () => {
  if (process.env.KBG_DEBUG_DIR && wh) (await import('node:fs')).writeFileSync(`${process.env.KBG_DEBUG_DIR}/hpa-release-webhook.log`, wh.logs());
  console.log(`[hpa-release] figures:\n  ${figures.join('\n  ')}`);
  await timeline?.stop();
  await wh?.stop();
  await ns?.cleanup();
});

describe('a release of an app whose HorizontalPodAutoscaler follows the live colour', () => {
  it('the HPA scales the live colour (blue) and reads its metrics', async () => {
    const h = await waitFor(
      async () => {
        const h = await getHpa();
        return h.status.conditions?.some((c) => c.type === 'ScalingActive' && c.status === 'True') ? h : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 1_000, message: 'the HPA is active on shop-blue' },
    );
    expect(h.spec.scaleTargetRef.name).toBe('shop-blue');
    expect(h.status.currentReplicas).toBe(MIN);
    note('HPA active on shop-blue at 2 replicas');
  }, 120_000);

  it('set image is redirected to green, which rolls out at the live count', async () => {
    await kubectlOk(['-n', ns.name, 'set', 'image', 'deployment/shop-blue', 'app=registry.example/shop:v2']);
    note('set image shop-blue app=registry.example/shop:v2');
    await waitFor(async () => (await dep('shop-green')).spec.template.spec.containers[0]!.image === 'registry.example/shop:v2', {
      timeoutMs: 15_000,
      message: 'the change to reach shop-green',
    });
    await rolledOut(ns.name, ['shop-green']);
    expect((await dep('shop-blue')).spec.template.spec.containers[0]!.image).toBe('registry.example/shop:v1');
    expect((await dep('shop-green')).spec.replicas).toBe(MIN);
    note('shop-green rolled out v2 at 2 replicas');
  }, 120_000);

  it('under load the HPA scales blue to its maximum; the reconciler raises green to the same count', async () => {
    // The two running blue pods take 100m each (100% of the request): the HPA wants ceil(2 × 100 / 50) = 4.
    await setPodUsage(ns.name, 'slot=blue', { cpu: '100m' });
    await waitFor(async () => (await dep('shop-blue')).spec.replicas === MAX, {
      timeoutMs: 90_000,
      intervalMs: 500,
      message: `the HPA to scale shop-blue to ${MAX}`,
    });
    note(`HPA scaled shop-blue to ${MAX}`);
    const blueAt = Date.now();
    await waitFor(async () => ready(await dep('shop-green'), MAX), { timeoutMs: 30_000, intervalMs: 250, message: `shop-green raised to ${MAX} and ready` });
    note(`shop-green raised to ${MAX} and ready, ${Date.now() - blueAt} ms after blue was scaled`);
    await waitFor(async () => ready(await dep('shop-blue'), MAX), { timeoutMs: 30_000, message: `shop-blue ready at ${MAX}` });
    const events = await kubectlJson<EventList>(['-n', ns.name, 'get', 'events', '--field-selector', 'involvedObject.name=shop-green']);
    expect(events.items.map((e) => e.reason)).toContain('ScaledToLiveCount');
    expect(events.items.find((e) => e.reason === 'ScaledToLiveCount')!.message).toMatch(
      /^scaled from 2 to 4 replicas, as many as HorizontalPodAutoscaler shop runs the live colour at/,
    );
  }, 150_000);

  it('the HPA’s stabilization window passes: green keeps its capacity and is ready to switch', async () => {
    // Warm-up traffic through the preview reaches green's pods: 60m each (the HPA will find
    // ceil(4 × 60 / 50) = 5, capped at 4, once it follows green).
    await setPodUsage(ns.name, 'slot=green', { cpu: '60m' });
    await metricsShow('slot=green', MAX, 50);
    await new Promise((r) => setTimeout(r, (STABILIZATION_S + 3 * 2) * 1000));
    note(`stabilization window (${STABILIZATION_S}s) and three HPA syncs passed`);
    expect(ready(await dep('shop-green'), MAX)).toBe(true);
    expect(ready(await dep('shop-blue'), MAX)).toBe(true);
    const status = await kubectlBg(ns.name, ['status', 'shop', '-o', 'json']);
    expect(status.code).toBe(0);
    const s = JSON.parse(status.stdout) as {
      phase: string;
      hpas: { name: string; follows: string; target: string; minReplicas: number; maxReplicas: number }[];
    };
    expect(s.phase).toBe('ready-to-switch');
    expect(s.hpas).toEqual([expect.objectContaining({ name: 'shop', follows: 'live', target: 'shop-blue', minReplicas: MIN, maxReplicas: MAX })]);
  }, 150_000);

  it('kubectl bg switch succeeds without --force; the HPA is pointed at green at once', async () => {
    const r = await kubectlBg(ns.name, ['switch', 'shop', '--wait']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^switched shop to green/m);
    note(`kubectl bg switch shop --wait: exit 0 in ${Math.round(r.ms)} ms (no --force)`);
    const switched = Date.now();
    const h = await waitFor(
      async () => {
        const h = await getHpa();
        return h.spec.scaleTargetRef.name === 'shop-green' ? h : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 100, message: 'the HPA to be pointed at shop-green' },
    );
    note(`HPA shop retargeted to shop-green within ${Date.now() - switched} ms of the switch's end`);
    expect(h.spec).toMatchObject({ minReplicas: MIN, maxReplicas: MAX });
    const events = await kubectlJson<EventList>(['-n', ns.name, 'get', 'events', '--field-selector', 'involvedObject.kind=HorizontalPodAutoscaler']);
    expect(events.items.map((e) => `${e.reason}: ${e.message}`)).toContain('RetargetedToLive: now scales shop-green, the live colour (was shop-blue)');
  }, 120_000);

  it('the old colour is scaled down after its warm period; the HPA keeps green where it was; nothing flaps', async () => {
    const blue = await waitFor(
      async () => {
        const d = await dep('shop-blue');
        return d.spec.replicas === 0 ? d : undefined;
      },
      { timeoutMs: (SCALE_DOWN_DELAY_S + 30) * 1000, intervalMs: 500, message: 'shop-blue scaled down after its warm period' },
    );
    expect(blue.metadata.labels?.['bluegreen.io/live']).toBe('false');
    note('shop-blue scaled down to 0');
    // Watch a while longer: two HPA stabilization windows, many syncs.
    await new Promise((r) => setTimeout(r, 2 * (STABILIZATION_S + 5) * 1000));
    const [h, green, blueNow] = await Promise.all([getHpa(), dep('shop-green'), dep('shop-blue')]);
    expect(h.spec.scaleTargetRef.name).toBe('shop-green');
    expect(h.status.currentReplicas).toBe(MAX);
    expect(h.status.conditions).toContainEqual(expect.objectContaining({ type: 'ScalingActive', status: 'True' }));
    expect(ready(green, MAX)).toBe(true);
    expect(blueNow.spec.replicas).toBe(0);
    await timeline.caughtUp();
    const blueReplicas = replicasTimeline('shop-blue');
    const greenReplicas = replicasTimeline('shop-green');
    note(`replicas as committed: shop-blue ${blueReplicas.join(' -> ')}; shop-green ${greenReplicas.join(' -> ')}`);
    // No flapping: blue only rises (the HPA) until its one scale-down; green only rises.
    expect(blueReplicas[0]).toBe(MIN);
    expect(blueReplicas.at(-1)).toBe(0);
    expect(blueReplicas.slice(0, -1).every((n, i, xs) => i === 0 || n >= xs[i - 1]!)).toBe(true);
    expect(blueReplicas.filter((n) => n === 0)).toHaveLength(1);
    expect(greenReplicas).toEqual([MIN, MAX]);
    expect(timeline.errors).toEqual([]);
  }, 150_000);
  it('a second HPA, on the idle colour: not supported; a Warning Event on each HPA, status says which to delete, nothing retargeted', async () => {
    await apply({ ...hpa(ns.name), metadata: { name: 'shop-idle', namespace: ns.name, labels: { 'bluegreen.io/app': 'shop' } } });
    const events = await waitFor(
      async () => {
        const l = await kubectlJson<EventList>(['-n', ns.name, 'get', 'events', '--field-selector', 'reason=NotFollowed']);
        return l.items.length >= 2 ? l.items : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 250, message: 'NotFollowed Events on both HPAs' },
    );
    expect(events.map((e) => `${e.involvedObject.kind}/${e.involvedObject.name}`).sort()).toEqual([
      'HorizontalPodAutoscaler/shop',
      'HorizontalPodAutoscaler/shop-idle',
    ]);
    expect(events[0]!.message).toMatch(
      /^app shop has 2 HorizontalPodAutoscalers on its colours \(.*\); kube-bluegreen supports one, which follows the live colour .*: delete shop-idle /,
    );
    const status = await kubectlBg(ns.name, ['status', 'shop', '-o', 'json']);
    const s = JSON.parse(status.stdout) as { hpaWarning: string | null; hpas: { name: string; follows: string }[] };
    expect(s.hpas.map((h) => `${h.name}:${h.follows}`).sort()).toEqual(['shop-idle:idle', 'shop:live']);
    expect(s.hpaWarning).toMatch(/delete shop-idle/);
    const text = await kubectlBg(ns.name, ['status', 'shop']);
    expect(text.stdout).toMatch(/^HPA: +shop scales shop-green, green \(live\): 2-4 replicas, 4 current/m);
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await getHpa()).spec.scaleTargetRef.name).toBe('shop-green');
    expect((await kubectlJson<Hpa>(['-n', ns.name, 'get', 'hpa', 'shop-idle'])).spec.scaleTargetRef.name).toBe('shop-blue');
    expect((await dep('shop-blue')).spec.replicas).toBe(0);
    await kubectlOk(['-n', ns.name, 'delete', 'hpa', 'shop-idle']);
  }, 60_000);
});
