// `kubectl bg` end to end: the real local control plane, the real kubectl (which
// finds the plugin on PATH as `kubectl-bg`), and the webhook running. The seeds'
// whole cycle with no script of ours: init -> kubectl set image on the live
// colour -> status (idle rolling out, then ready to switch) -> switch --wait ->
// EndpointSlices hold only green pods -> rollback -> only blue pods.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppStatus } from '../../src/core/status.ts';
import { sampleApp } from '../fixtures/sample-app.ts';
import { apply, clusterEnv, createNamespace, kubectl, kubectlJson, kubectlOk, type TestNamespace, waitFor } from './helpers/cluster.ts';
import { type PluginResult, runProcess } from './helpers/plugin-cli.ts';
import { type RunningWebhook, startWebhook } from './helpers/webhook.ts';

const REPO = resolve(import.meta.dirname, '../..');
const NODE = join(REPO, 'node_modules/.bin/node');
const MAIN = join(REPO, 'plugin/src/main.ts');
const COMPLETE = join(REPO, 'plugin/src/complete.ts');

const run = runProcess;

let ns: TestNamespace;
let wh: RunningWebhook;
let binDir: string;

function baseEnv(): NodeJS.ProcessEnv {
  const env = clusterEnv();
  return { ...process.env, HOME: env.home, KUBECONFIG: env.kubeconfig, NO_PROXY: '127.0.0.1,localhost', NO_COLOR: '1' };
}

/** The plugin as a child process: node plugin/src/main.ts --kubeconfig ... -n NS ARGS. */
function bg(...args: string[]): Promise<PluginResult> {
  return run(NODE, [MAIN, '--kubeconfig', clusterEnv().kubeconfig, '-n', ns.name, ...args], baseEnv());
}

/** `kubectl bg ARGS -n NS` through kubectl's plugin discovery (PATH holds kubectl-bg). */
function kubectlBg(...args: string[]): Promise<PluginResult> {
  return run(clusterEnv().kubectl, ['bg', ...args, '-n', ns.name], { ...baseEnv(), PATH: `${binDir}:${process.env.PATH}` });
}

async function status(app = 'shop'): Promise<AppStatus> {
  const r = await bg('status', app, '-o', 'json');
  if (r.code !== 0) throw new Error(`kubectl bg status ${app} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as AppStatus;
}

interface Slice {
  endpoints?: { conditions?: { ready?: boolean }; targetRef?: { kind?: string; name?: string } }[] | null;
}
interface PodList {
  items: { metadata: { name: string } }[];
}

/** The pods behind a Service's EndpointSlices, and whether each is ready. */
async function endpointPods(service: string): Promise<{ name: string; ready: boolean }[]> {
  const slices = await kubectlJson<{ items: Slice[] }>(['-n', ns.name, 'get', 'endpointslices', '-l', `kubernetes.io/service-name=${service}`]);
  return slices.items
    .flatMap((s) => s.endpoints ?? [])
    .map((e) => ({ name: e.targetRef?.name ?? '<no pod>', ready: e.conditions?.ready !== false }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

async function podNames(selector: string): Promise<string[]> {
  return (await kubectlJson<PodList>(['-n', ns.name, 'get', 'pods', '-l', selector])).items.map((p) => p.metadata.name).sort();
}

/** Every endpoint of the Service is a ready pod of `colour` (and there are `count`). */
async function onlyColour(service: string, app: string, colour: string, count: number): Promise<void> {
  const eps = await endpointPods(service);
  const pods = new Set(await podNames(`app=${app},slot=${colour}`));
  expect(eps).toHaveLength(count);
  for (const e of eps) {
    expect(pods.has(e.name), `${e.name} is a ${colour} pod of ${app}`).toBe(true);
    expect(e.ready).toBe(true);
  }
}

interface Dep {
  metadata: { name: string; labels?: Record<string, string>; resourceVersion: string };
  spec: { replicas: number; selector: { matchLabels: Record<string, string> }; template: { spec: { containers: { image: string }[] } } };
  status?: { availableReplicas?: number };
}
interface Svc {
  metadata: { resourceVersion: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { selector: Record<string, string> };
}
const getDep = (name: string) => kubectlJson<Dep>(['-n', ns.name, 'get', 'deployment', name]);
const getSvc = (name: string) => kubectlJson<Svc>(['-n', ns.name, 'get', 'service', name]);

beforeAll(async () => {
  ns = await createNamespace('plugin');
  binDir = mkdtempSync(join(tmpdir(), 'kbg-plugin-bin-'));
  for (const [exe, script] of [
    ['kubectl-bg', MAIN],
    ['kubectl_complete-bg', COMPLETE],
  ] as const) {
    writeFileSync(join(binDir, exe), `#!/bin/sh\nexec "${NODE}" "${script}" "$@"\n`);
    chmodSync(join(binDir, exe), 0o755);
  }
  // The starting point of the seeds: one ordinary Deployment and its Service.
  await apply(
    [
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'shop', namespace: ns.name, labels: { app: 'shop' } },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'shop' } },
          template: {
            metadata: { labels: { app: 'shop' } },
            spec: { containers: [{ name: 'app', image: 'registry.example/shop:v1', ports: [{ containerPort: 8080 }] }] },
          },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'shop', namespace: ns.name, labels: { app: 'shop' } },
        spec: { selector: { app: 'shop' }, ports: [{ port: 80, targetPort: 8080 }] },
      },
    ],
    { namespace: ns.name },
  );
  await kubectlOk(['-n', ns.name, 'rollout', 'status', 'deployment/shop', '--timeout=60s'], { timeoutMs: 70_000 });
  wh = await startWebhook({ namespace: ns.name });
});

afterAll(async () => {
  await wh?.stop();
  await ns?.cleanup();
  if (binDir) rmSync(binDir, { recursive: true, force: true });
});

describe('kubectl bg: the seeds cycle on a real control plane', () => {
  it('status of an app that is not enrolled says so, exit 1', async () => {
    const r = await bg('status', 'shop');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: app shop is not enrolled in namespace ${ns.name}`);
    expect(r.stderr).toContain(`hint: enrol it with 'kubectl bg init shop -n ${ns.name} --from deployment/<name>'`);
  });

  it('kubectl finds the plugin on PATH: kubectl bg --help, and completion through kubectl_complete-bg', async () => {
    const help = await run(clusterEnv().kubectl, ['bg', '--help'], { ...baseEnv(), PATH: `${binDir}:${process.env.PATH}` });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: kubectl bg [options] [command]');
    expect(help.stdout).toContain('Exit codes:');
    const comp = await run(clusterEnv().kubectl, ['__complete', 'bg', 'sw'], { ...baseEnv(), PATH: `${binDir}:${process.env.PATH}` });
    expect(comp.code).toBe(0);
    expect(comp.stdout).toMatch(/^switch\t/m);
    expect(comp.stdout.trimEnd().split('\n').at(-1)).toBe(':4');
  });

  it('kubectl bg init shop --from deployment/shop enrols it: blue (live) and green (scaled down), Service on blue, source gone', async () => {
    const r = await kubectlBg('init', 'shop', '--from', 'deployment/shop');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('deployment.apps/shop-blue created (copy of shop, slot=blue, 2 replicas, live)');
    expect(r.stdout).toContain(`enrolled app shop: blue is live (shop-blue), green is idle (shop-green, 0 replicas), Service shop, slot label slot`);
    const svc = await getSvc('shop');
    expect(svc.spec.selector).toEqual({ app: 'shop', slot: 'blue' });
    expect(svc.metadata.labels?.['bluegreen.io/app']).toBe('shop');
    expect(svc.metadata.annotations?.['bluegreen.io/role']).toBe('active');
    const blue = await getDep('shop-blue');
    expect(blue.spec.replicas).toBe(2);
    expect(blue.metadata.labels?.['bluegreen.io/live']).toBe('true');
    expect((await getDep('shop-green')).spec.replicas).toBe(0);
    await waitFor(async () => (await kubectl(['-n', ns.name, 'get', 'deployment', 'shop'])).code !== 0, { message: 'source deleted' });
    await waitFor(async () => (await endpointPods('shop')).length === 2 && (await podNames('app=shop')).length === 2, {
      message: 'only the blue pods left',
      timeoutMs: 60_000,
    });
    await onlyColour('shop', 'shop', 'blue', 2);
    expect(await status()).toMatchObject({ live: 'blue', idle: 'green', phase: 'stable', problems: [] });
  });

  it('init is safe to run twice: the second run changes nothing, exit 0', async () => {
    const before = (await getSvc('shop')).metadata.resourceVersion;
    const r = await bg('init', 'shop', '--from', 'deployment/shop');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      `app shop is already enrolled in namespace ${ns.name}: blue is live (shop-blue), green is idle (shop-green, 0 replicas), Service shop, slot label slot; nothing to do\n`,
    );
    expect((await getSvc('shop')).metadata.resourceVersion).toBe(before);
  });

  it('kubectl set image on the live colour is redirected to green; status shows the idle colour rolling out; switch refuses (exit 2); --dry-run changes nothing', async () => {
    // Hold green's rollout in view: its pods only count as available after 500 s (< progressDeadlineSeconds).
    await kubectlOk(['-n', ns.name, 'patch', 'deployment', 'shop-green', '--type', 'merge', '-p', '{"spec":{"minReadySeconds":500}}']);
    const set = await kubectl(['-n', ns.name, 'set', 'image', 'deployment/shop-blue', 'app=registry.example/shop:v2']);
    expect(set.code).toBe(0);
    expect(set.stderr).toContain('image change redirected to shop-green (idle)');
    expect((await getDep('shop-blue')).spec.template.spec.containers[0]!.image).toBe('registry.example/shop:v1');
    expect((await getDep('shop-green')).spec.template.spec.containers[0]!.image).toBe('registry.example/shop:v2');

    const st = await waitFor(async () => {
      const s = await status();
      return s.phase === 'idle-rolling-out' ? s : undefined;
    });
    expect(st.colours.find((c) => c.colour === 'green')).toMatchObject({ images: ['app=registry.example/shop:v2'], desired: 2 });
    const text = await bg('status', 'shop');
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('Phase:       idle-rolling-out');

    const svcBefore = await getSvc('shop');
    const refused = await bg('switch', 'shop');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^error: cannot switch shop to green: shop-green /);
    expect(refused.stderr).toContain(`hint: wait with 'kubectl bg status shop -n ${ns.name} --watch'`);
    const dry = await bg('switch', 'shop', '--dry-run');
    expect(dry.code).toBe(2);
    // --force --dry-run gets past the plan; the webhook admits the explicit override, and still nothing changes.
    const forcedDry = await bg('switch', 'shop', '--dry-run', '--force');
    expect(forcedDry.code).toBe(0);
    expect(forcedDry.stdout).toContain('server dry run: accepted');
    const svcAfter = await getSvc('shop');
    expect(svcAfter.metadata.resourceVersion).toBe(svcBefore.metadata.resourceVersion);
    expect(svcAfter.spec.selector).toEqual({ app: 'shop', slot: 'blue' });
    expect((await getDep('shop-green')).metadata.labels?.['bluegreen.io/live']).toBe('false');
  });

  it('once green is available, status says ready to switch; switch --dry-run is admitted by the server and changes nothing', async () => {
    await kubectlOk(['-n', ns.name, 'patch', 'deployment', 'shop-green', '--type', 'merge', '-p', '{"spec":{"minReadySeconds":0}}']);
    await waitFor(async () => (await status()).phase === 'ready-to-switch', { timeoutMs: 60_000, message: 'ready-to-switch' });
    const svcBefore = await getSvc('shop');
    const dry = await bg('switch', 'shop', '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`switch shop in namespace ${ns.name}: blue -> green (dry run)`);
    expect(dry.stdout).toContain('server dry run: accepted by the API server and its admission webhooks; nothing was changed');
    const svcAfter = await getSvc('shop');
    expect(svcAfter.metadata.resourceVersion).toBe(svcBefore.metadata.resourceVersion);
    expect(svcAfter.spec.selector.slot).toBe('blue');
  });

  it('kubectl bg switch shop --wait: the EndpointSlices hold only green pods', async () => {
    const r = await kubectlBg('switch', 'shop', '--wait', '--timeout', '60s');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('before:   blue is live    shop-blue    2/2 ready   app=registry.example/shop:v1');
    expect(r.stdout).toContain('after:    green is live   shop-green   2/2 ready   app=registry.example/shop:v2');
    expect(r.stdout).toMatch(/Service shop sends traffic only to green: 2 ready endpoints of shop-green \(\S+\)\n$/);
    await onlyColour('shop', 'shop', 'green', 2);
    const st = await status();
    expect(st).toMatchObject({ live: 'green', idle: 'blue', phase: 'stable' });
    expect(st.lastSwitch).toMatchObject({ kind: 'switch', from: 'blue', to: 'green' });
    expect(st.lastSwitch?.by).toBeTruthy();
    expect((await getDep('shop-green')).metadata.labels?.['bluegreen.io/live']).toBe('true');
    expect((await getDep('shop-blue')).metadata.labels?.['bluegreen.io/live']).toBe('false');
  });

  it('kubectl bg rollback shop: only blue pods again', async () => {
    const r = await kubectlBg('rollback', 'shop', '--wait');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`rolled back shop to blue`);
    await onlyColour('shop', 'shop', 'blue', 2);
    expect(await status()).toMatchObject({ live: 'blue', phase: 'stable' });
  });

  it('history -o json lists the switch and the rollback; status -o json of the namespace is {items}', async () => {
    const h = await bg('history', 'shop', '-o', 'json');
    expect(h.code).toBe(0);
    const doc = JSON.parse(h.stdout) as { items: { kind: string; from: string; to: string }[] };
    expect(doc.items.map((i) => `${i.kind} ${i.from}->${i.to}`)).toEqual(['switch blue->green', 'rollback green->blue']);
    const all = await bg('status', '-o', 'json');
    expect(all.code).toBe(0);
    const list = JSON.parse(all.stdout) as { items: AppStatus[] };
    expect(list.items.map((i) => i.app)).toEqual(['shop']);
    const table = await bg('status');
    expect(table.stdout.split('\n')[0]).toMatch(/^APP\s+PHASE\s+LIVE\s+BLUE\s+GREEN\s+PREVIEW\s+LAST SWITCH$/);
  });
});

describe('kubectl bg rollback to a colour that was scaled down', () => {
  it('scales it up, waits for it, switches back', async () => {
    // An app enrolled by hand; its Service once blue is available (the webhook refuses a Service on a colour that is not).
    const objs = sampleApp({ namespace: ns.name, app: 'cart', replicas: 2, idleReplicas: 0 }) as { kind: string }[];
    await apply(
      objs.filter((o) => o.kind === 'Deployment'),
      { namespace: ns.name },
    );
    await kubectlOk(['-n', ns.name, 'rollout', 'status', 'deployment/cart-blue', '--timeout=60s'], { timeoutMs: 70_000 });
    await apply(
      objs.filter((o) => o.kind === 'Service'),
      { namespace: ns.name },
    );
    // Scale the old colour down as soon as a switch is done.
    await kubectlOk(['-n', ns.name, 'annotate', 'service', 'cart', 'bluegreen.io/scale-down-delay=0s']);
    const set = await kubectl(['-n', ns.name, 'set', 'image', 'deployment/cart-blue', 'app=registry.example/cart:v2']);
    expect(set.code).toBe(0);
    await waitFor(async () => (await status('cart')).phase === 'ready-to-switch', { timeoutMs: 60_000, message: 'cart ready-to-switch' });
    expect((await bg('switch', 'cart', '--wait')).code).toBe(0);
    // The webhook's loop scales blue down once the delay (0s) is over.
    await waitFor(async () => (await getDep('cart-blue')).spec.replicas === 0, { timeoutMs: 60_000, message: 'cart-blue scaled down' });
    const r = await bg('rollback', 'cart', '--wait', '--timeout', '90s');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('scaled cart-blue up to 2 replicas (it was scaled down after the last switch)');
    expect(r.stdout).toContain('rolled back cart to blue');
    await onlyColour('cart', 'cart', 'blue', 2);
  });
});
