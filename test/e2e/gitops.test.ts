// GitOps and existing setups (issue 12), on the local control plane with the webhook running:
// Argo CD and Flux emulated as they send their requests (test/e2e/helpers/appliers.ts), a Helm
// chart that declares both colours (charts/bluegreen-app), and the seeds' own setups in their
// own order.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rolledOut } from './helpers/apps.ts';
import { createNamespace, helm, kubectl, kubectlJson, type TestNamespace, waitFor } from './helpers/cluster.ts';
import { kubectlBg } from './helpers/plugin-cli.ts';
import { type RunningWebhook, startWebhook } from './helpers/webhook.ts';

interface Dep {
  metadata: { name: string; generation: number; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { replicas: number; template: { metadata: { labels: Record<string, string> }; spec: { containers: { image: string }[] } } };
}
interface Svc {
  metadata: { name: string; annotations?: Record<string, string> };
  spec: { selector: Record<string, string> };
}

const CHART = resolve(import.meta.dirname, '../../charts/bluegreen-app');

let ns: TestNamespace;
let wh: RunningWebhook;
const k = (...args: string[]) => kubectl(['-n', ns.name, ...args]);
const dep = (name: string) => kubectlJson<Dep>(['-n', ns.name, 'get', 'deployment', name]);
const svc = (name: string) => kubectlJson<Svc>(['-n', ns.name, 'get', 'service', name]);
const image = async (name: string) => (await dep(name)).spec.template.spec.containers[0]!.image;
const liveLabel = async (name: string) => (await dep(name)).metadata.labels?.['bluegreen.io/live'];

beforeAll(async () => {
  ns = await createNamespace('gitops');
  wh = await startWebhook({ namespace: ns.name, configName: 'gitops' });
});

afterAll(async () => {
  if (process.env.KBG_DEBUG_DIR && wh) writeFileSync(`${process.env.KBG_DEBUG_DIR}/gitops-webhook.log`, wh.logs());
  await wh?.stop();
  await ns?.cleanup();
});

describe('a Helm chart that declares both colours (charts/bluegreen-app, seed 000\'s values)', () => {
  const release = 'store';
  const up = (...set: string[]) =>
    helm(['upgrade', '--install', release, CHART, '--namespace', ns.name, '--reuse-values', ...set.flatMap((s) => ['--set', s])], { timeoutMs: 120_000 });

  beforeAll(async () => {
    const r = await helm(['install', release, CHART, '--namespace', ns.name, '--set', 'blue.image.tag=v1', '--set', 'green.image.tag=v1'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    await rolledOut(ns.name, ['store-blue', 'store-green']);
  });

  it('helm install: both colours run, the active Service selects blue, the live labels follow it', async () => {
    expect((await svc('store')).spec.selector).toEqual({ app: 'store', environment: 'blue' });
    expect((await svc('store-preview')).spec.selector).toEqual({ app: 'store', environment: 'green' });
    await waitFor(async () => (await liveLabel('store-blue')) === 'true' && (await liveLabel('store-green')) === 'false', { timeoutMs: 10_000, message: 'live labels' });
  });

  it('helm upgrade of the idle colour (green.image.tag): exactly one rollout of green, blue untouched', async () => {
    const [blue, green] = [await dep('store-blue'), await dep('store-green')];
    const r = await up('green.image.tag=v2');
    expect(r.code, r.stderr).toBe(0);
    expect(await image('store-green')).toBe('registry.example/shop:v2');
    expect((await dep('store-green')).metadata.generation).toBe(green.metadata.generation + 1);
    expect((await dep('store-blue')).metadata.generation).toBe(blue.metadata.generation);
    await rolledOut(ns.name, ['store-green']);
  });

  it("helm upgrade of the live colour (blue.image.tag): refused, naming the idle colour's values; nothing changed", async () => {
    const [blue, green] = [await dep('store-blue'), await dep('store-green')];
    const r = await up('blue.image.tag=v3');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('Deployment store-blue is the live colour (blue) of app store, and Helm release');
    expect(r.stderr).toContain('declares both colours');
    expect(r.stderr).toContain('Make the change in the values of the idle colour (green, Deployment store-green)');
    const [blue2, green2] = [await dep('store-blue'), await dep('store-green')];
    expect(blue2.spec.template).toEqual(blue.spec.template);
    expect(green2.metadata.generation).toBe(green.metadata.generation);
    expect(blue2.metadata.annotations?.['bluegreen.io/pending-change']).toBeUndefined();
    // Put the release's values back where the cluster is, as its user would.
    expect((await up('blue.image.tag=v1')).code).toBe(0);
  });

  it('kubectl bg switch on the release: exit 2, naming the helm upgrade', async () => {
    const r = await kubectlBg(ns.name, ['switch', 'store']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain("app store is declared by Helm release");
    expect(r.stderr).toContain("'helm upgrade' of release");
    expect((await svc('store')).spec.selector.environment).toBe('blue');
  });

  it('helm upgrade --set activeEnvironment=green: refused while green is short of the live count, admitted once it is; the labels follow', async () => {
    expect((await up('green.replicas=1')).code).toBe(0);
    const refusedUp = await up('activeEnvironment=green');
    expect(refusedUp.code).not.toBe(0);
    expect(refusedUp.stderr).toContain("Service store cannot send app store's traffic to green yet");
    expect((await svc('store')).spec.selector.environment).toBe('blue');
    const ok = await up('green.replicas=2', 'activeEnvironment=green');
    // Helm applies the Service before the Deployments: green is still at 1 when the Service comes.
    if (ok.code !== 0) {
      expect(ok.stderr).toContain("Service store cannot send app store's traffic to green yet");
      await rolledOut(ns.name, ['store-green']);
      const again = await up('activeEnvironment=green');
      expect(again.code, again.stderr).toBe(0);
    }
    expect((await svc('store')).spec.selector.environment).toBe('green');
    expect((await svc('store-preview')).spec.selector.environment).toBe('blue');
    await waitFor(async () => (await liveLabel('store-green')) === 'true' && (await liveLabel('store-blue')) === 'false', { timeoutMs: 10_000, message: 'live labels after the switch' });
    // The same release again: nothing moves, and the old colour is left as the values say.
    const gens = [(await dep('store-blue')).metadata.generation, (await dep('store-green')).metadata.generation];
    expect((await up()).code).toBe(0);
    expect([(await dep('store-blue')).metadata.generation, (await dep('store-green')).metadata.generation]).toEqual(gens);
    expect((await dep('store-blue')).spec.replicas).toBe(2);
  });
});

describe("seed 000's setup (slot label `environment`, three Services), applied in the seed's own order", () => {
  /** Seed 000's files, enrolled with the label and the slot-label annotation on the production Service. */
  function seedFiles(app: string): [string, object[]][] {
    const dep = (colour: string, version: string) => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: `${app}-${colour}`, namespace: ns.name, labels: { app, environment: colour, 'bluegreen.io/app': app }, annotations: { description: `${colour} environment` } },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app, environment: colour } },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
        template: {
          metadata: { labels: { app, environment: colour, version }, annotations: { 'prometheus.io/scrape': 'true' } },
          spec: { containers: [{ name: 'app', image: `localhost:32000/${app}:${version}`, env: [{ name: 'VERSION', value: version }] }] },
        },
      },
    });
    const service = (name: string, selector: Record<string, string>, extra: Record<string, string> = {}) => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: ns.name, labels: { app, 'bluegreen.io/app': app }, annotations: extra },
      spec: { type: 'ClusterIP', selector, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    });
    return [
      ['deployment-blue.yaml', [dep('blue', 'v1.0.0')]],
      ['deployment-green.yaml', [dep('green', 'v2.0.0')]],
      [
        'services.yaml',
        [
          service(app, { app, environment: 'blue' }, { 'bluegreen.io/role': 'active', 'bluegreen.io/slot-label': 'environment' }),
          service(`${app}-blue`, { app, environment: 'blue' }),
          service(`${app}-green`, { app, environment: 'green' }),
        ],
      ],
    ];
  }

  it("kubectl apply -f dir/ in the seed's order: admitted as is; a set image of the live colour is redirected; the seed's switch is gated and sticks", async () => {
    const app = 'monapp';
    const dir = mkdtempSync(join(tmpdir(), 'kbg-seed000-'));
    seedFiles(app).forEach(([f, objs], i) => writeFileSync(join(dir, `${i}-${f}`), objs.map((o) => JSON.stringify(o)).join('\n---\n')));
    const r = await k('apply', '-f', dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('denied');
    await rolledOut(ns.name, [`${app}-blue`, `${app}-green`]);
    const x = await k('set', 'image', `deployment/${app}-blue`, `app=localhost:32000/${app}:v3.0.0`);
    expect(x.code, x.stderr).toBe(0);
    expect(x.stderr).toContain(`redirected to ${app}-green (idle)`);
    await waitFor(async () => (await image(`${app}-green`)) === `localhost:32000/${app}:v3.0.0`, { timeoutMs: 10_000, message: 'the redirect to land' });
    expect(await image(`${app}-blue`)).toBe(`localhost:32000/${app}:v1.0.0`);
    await rolledOut(ns.name, [`${app}-green`]);
    // The seed's own switch: a raw selector patch, admitted once green is ready; the labels follow.
    const sw = await k('patch', 'service', app, '-p', '{"spec":{"selector":{"environment":"green"}}}');
    expect(sw.code, sw.stderr).toBe(0);
    await waitFor(async () => (await liveLabel(`${app}-green`)) === 'true' && (await liveLabel(`${app}-blue`)) === 'false', { timeoutMs: 5_000, message: 'live labels' });
  });
});

describe('a preview Service applied before the colour it selects exists', () => {
  it('admitted with a warning; the Deployment arriving later completes the app', async () => {
    const app = 'early';
    const svcOf = (name: string, role: string, colour: string) => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: ns.name, labels: { 'bluegreen.io/app': app }, annotations: { 'bluegreen.io/role': role } },
      spec: { selector: { app, slot: colour }, ports: [{ port: 80 }] },
    });
    const depOf = (colour: string) => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: `${app}-${colour}`, namespace: ns.name, labels: { 'bluegreen.io/app': app } },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app, slot: colour } },
        template: { metadata: { labels: { app, slot: colour } }, spec: { containers: [{ name: 'app', image: 'registry.example/early:v1' }] } },
      },
    });
    const first = await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [depOf('blue'), svcOf(app, 'active', 'blue'), svcOf(`${app}-preview`, 'preview', 'green')] }) });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain(`Service ${app}-preview selects slot=green, and app ${app} has no green Deployment yet`);
    const second = await kubectl(['apply', '-f', '-'], { input: JSON.stringify(depOf('green')) });
    expect(second.code, second.stderr).toBe(0);
    await rolledOut(ns.name, [`${app}-blue`, `${app}-green`]);
    const s = await kubectlBg(ns.name, ['status', app, '-o', 'json']);
    expect(s.code, s.stderr).toBe(0);
    expect(JSON.parse(s.stdout)).toMatchObject({ live: 'blue', idle: 'green', previewServices: [`${app}-preview`], problems: [] });
  });
});
