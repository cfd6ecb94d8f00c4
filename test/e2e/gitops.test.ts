// GitOps and existing setups (issue 12), on the local control plane with the webhook running:
// Argo CD and Flux emulated as they send their requests (test/e2e/helpers/appliers.ts), a Helm
// chart that declares both colours (charts/bluegreen-app), and the seeds' own setups in their
// own order.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rolledOut } from './helpers/apps.ts';
import {
  argoDiffServerSide,
  argoSync,
  ensureAppliersRbac,
  fluxApply,
  fluxDiff,
  fluxOwnerLabels,
  kubectlDiffServerSide,
  manifestDir,
} from './helpers/appliers.ts';
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

describe("a Helm chart that declares both colours (charts/bluegreen-app, seed 000's values)", () => {
  const release = 'store';
  const up = (...set: string[]) =>
    helm(['upgrade', '--install', release, CHART, '--namespace', ns.name, '--reuse-values', ...set.flatMap((s) => ['--set', s])], { timeoutMs: 120_000 });

  beforeAll(async () => {
    const r = await helm(['install', release, CHART, '--namespace', ns.name, '--set', 'blue.image.tag=v1', '--set', 'green.image.tag=v1'], {
      timeoutMs: 120_000,
    });
    expect(r.code, r.stderr).toBe(0);
    await rolledOut(ns.name, ['store-blue', 'store-green']);
  });

  it('helm install: both colours run, the active Service selects blue, the live labels follow it', async () => {
    expect((await svc('store')).spec.selector).toEqual({ app: 'store', environment: 'blue' });
    expect((await svc('store-preview')).spec.selector).toEqual({ app: 'store', environment: 'green' });
    await waitFor(async () => (await liveLabel('store-blue')) === 'true' && (await liveLabel('store-green')) === 'false', {
      timeoutMs: 10_000,
      message: 'live labels',
    });
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
    expect(r.stderr).toContain('app store is declared by Helm release');
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
    await waitFor(async () => (await liveLabel('store-green')) === 'true' && (await liveLabel('store-blue')) === 'false', {
      timeoutMs: 10_000,
      message: 'live labels after the switch',
    });
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
      metadata: {
        name: `${app}-${colour}`,
        namespace: ns.name,
        labels: { app, environment: colour, 'bluegreen.io/app': app },
        annotations: { description: `${colour} environment` },
      },
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
    await waitFor(async () => (await liveLabel(`${app}-green`)) === 'true' && (await liveLabel(`${app}-blue`)) === 'false', {
      timeoutMs: 5_000,
      message: 'live labels',
    });
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
    const first = await kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [depOf('blue'), svcOf(app, 'active', 'blue'), svcOf(`${app}-preview`, 'preview', 'green')],
      }),
    });
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

// ---- Argo CD and Flux, emulated as they send their requests ---------------------------------

/** A Git folder of one app: both colours and the active Service, as a user keeps it. */
function gitApp(app: string, o: { blue?: string; green?: string; live?: string; greenMinReady?: number } = {}) {
  const dep = (colour: string, image: string, minReady = 0) => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: `${app}-${colour}`, labels: { 'bluegreen.io/app': app } },
    spec: {
      replicas: 2,
      ...(minReady ? { minReadySeconds: minReady } : {}),
      selector: { matchLabels: { app, slot: colour } },
      template: { metadata: { labels: { app, slot: colour } }, spec: { containers: [{ name: 'app', image }] } },
    },
  });
  return {
    'blue.yaml': dep('blue', o.blue ?? `registry.example/${app}:v1`),
    'green.yaml': dep('green', o.green ?? `registry.example/${app}:v1`, o.greenMinReady),
    'service.yaml': {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: app, labels: { 'bluegreen.io/app': app }, annotations: { 'bluegreen.io/role': 'active' } },
      spec: { selector: { app, slot: o.live ?? 'blue' }, ports: [{ port: 80, targetPort: 8080 }] },
    },
  };
}
const gen = async (name: string) => (await dep(name)).metadata.generation;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Argo CD (auto-sync with self-heal: client-side apply as argocd-controller, every file each round)', () => {
  const app = 'argoshop';
  let git: ReturnType<typeof manifestDir>;
  const sync = () => argoSync({ dir: git.dir, namespace: ns.name, app });
  const rounds = async (n: number) => {
    const out = [];
    for (let i = 0; i < n; i++) out.push(await sync());
    return out;
  };

  beforeAll(async () => {
    await ensureAppliersRbac();
    git = manifestDir(gitApp(app));
    const first = await sync();
    expect(first.phase, JSON.stringify(first.results)).toBe('Succeeded');
    await rolledOut(ns.name, [`${app}-blue`, `${app}-green`]);
  });
  afterAll(() => git?.remove());

  it('a live-colour edit in Git: refused each round naming the idle manifest; 5 rounds, no rollout anywhere; the drift check reports it', async () => {
    const [b, g] = [await gen(`${app}-blue`), await gen(`${app}-green`)];
    git.write('blue.yaml', gitApp(app, { blue: `registry.example/${app}:v2` })['blue.yaml']);
    for (const r of await rounds(5)) {
      expect(r.phase).toBe('Failed');
      const blue = r.results.find((x) => x.name === `${app}-blue`)!;
      expect(blue.ok).toBe(false);
      expect(blue.message).toContain(`Deployment ${app}-blue is the live colour (blue) of app ${app}, which is deployed from Git by Argo CD`);
      expect(blue.message).toContain(`In Git, make this change in the manifest of Deployment ${app}-green`);
      expect(blue.message).toContain(`set spec.selector.slot: green in the manifest of Service ${app}`);
    }
    expect([await gen(`${app}-blue`), await gen(`${app}-green`)]).toEqual([b, g]);
    expect(await image(`${app}-blue`)).toBe(`registry.example/${app}:v1`);
    expect((await dep(`${app}-blue`)).metadata.annotations?.['bluegreen.io/pending-change']).toBeUndefined();
    const diff = await argoDiffServerSide({ dir: git.dir, namespace: ns.name, app });
    expect(diff.code).not.toBe(0);
    expect(diff.stderr).toContain('is the live colour (blue)');
    git.write('blue.yaml', gitApp(app)['blue.yaml']);
  });

  it('an idle-colour edit: exactly one rollout over 5 rounds; the drift check is clean afterwards', async () => {
    const [b, g] = [await gen(`${app}-blue`), await gen(`${app}-green`)];
    git.write('green.yaml', gitApp(app, { green: `registry.example/${app}:v2` })['green.yaml']);
    for (const r of await rounds(5)) expect(r.phase, JSON.stringify(r.results)).toBe('Succeeded');
    expect([await gen(`${app}-blue`), await gen(`${app}-green`)]).toEqual([b, g + 1]);
    expect(await image(`${app}-green`)).toBe(`registry.example/${app}:v2`);
    await rolledOut(ns.name, [`${app}-green`]);
    const diff = await argoDiffServerSide({ dir: git.dir, namespace: ns.name, app });
    expect(diff.code, diff.stdout + diff.stderr).toBe(0);
  });

  it('a selector switch in Git: refused while green is not ready, admitted on a later round; it sticks; labels agree; the old colour is left as Git says; kubectl bg switch exits 2', async () => {
    // A new green version that takes 4 s to count as available, and the switch in the next commit.
    git.write('green.yaml', gitApp(app, { green: `registry.example/${app}:v3`, greenMinReady: 4 })['green.yaml']);
    expect((await sync()).phase).toBe('Succeeded');
    git.write('service.yaml', gitApp(app, { live: 'green' })['service.yaml']);
    const first = await sync();
    const svcResult = first.results.find((x) => x.kind === 'Service')!;
    expect(svcResult.ok).toBe(false);
    expect(svcResult.message).toContain(`Service ${app} cannot send app ${app}'s traffic to green yet`);
    expect((await svc(app)).spec.selector.slot).toBe('blue');
    let admitted = false;
    for (let i = 0; i < 20 && !admitted; i++) {
      await pause(1000);
      admitted = (await sync()).phase === 'Succeeded';
    }
    expect(admitted).toBe(true);
    expect((await svc(app)).spec.selector.slot).toBe('green');
    await waitFor(async () => (await liveLabel(`${app}-green`)) === 'true' && (await liveLabel(`${app}-blue`)) === 'false', {
      timeoutMs: 5_000,
      message: 'live labels',
    });
    for (const r of await rounds(3)) expect(r.phase).toBe('Succeeded');
    expect((await svc(app)).spec.selector.slot).toBe('green');
    expect((await dep(`${app}-blue`)).spec.replicas).toBe(2);
    const bg = await kubectlBg(ns.name, ['switch', app]);
    expect(bg.code, bg.stderr).toBe(2);
    expect(bg.stderr).toContain(`app ${app} is deployed from Git by Argo CD`);
    expect(bg.stderr).toContain(`switch in Git: set spec.selector.slot: blue in the manifest of Service ${app}`);
  });
});

describe('Flux (kustomize-controller: its own apply engine, github.com/fluxcd/pkg/ssa)', () => {
  const app = 'fluxshop';
  let git: ReturnType<typeof manifestDir>;
  const flux = () => ({ dir: git.dir, name: app, targetNamespace: ns.name });

  beforeAll(async () => {
    await ensureAppliersRbac();
    git = manifestDir(gitApp(app));
    const r = await fluxApply(flux());
    expect(r.code, r.stderr).toBe(0);
    await rolledOut(ns.name, [`${app}-blue`, `${app}-green`]);
  });
  afterAll(() => git?.remove());

  it('a live-colour edit in Git: the apply is refused (its dry run included), 5 rounds change nothing, the drift check reports it', async () => {
    const [b, g] = [await gen(`${app}-blue`), await gen(`${app}-green`)];
    git.write('blue.yaml', gitApp(app, { blue: `registry.example/${app}:v2` })['blue.yaml']);
    for (let i = 0; i < 5; i++) {
      const r = await fluxApply(flux());
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`which is deployed from Git by Flux`);
      expect(r.stderr).toContain(`make this change in the manifest of Deployment ${app}-green`);
    }
    expect([await gen(`${app}-blue`), await gen(`${app}-green`)]).toEqual([b, g]);
    expect(await image(`${app}-blue`)).toBe(`registry.example/${app}:v1`);
    const d = await fluxDiff(flux());
    expect(d.code).toBe(2);
    expect(d.stdout + d.stderr).toContain('is the live colour (blue)');
    const k2 = await kubectlDiffServerSide({ dir: git.dir, namespace: ns.name, labels: fluxOwnerLabels(app) });
    expect(k2.code).toBeGreaterThan(1);
    expect(k2.stderr).toContain('is the live colour (blue)');
    git.write('blue.yaml', gitApp(app)['blue.yaml']);
  });

  it('an idle-colour edit: exactly one rollout over 5 rounds; the drift checks are clean afterwards', async () => {
    const [b, g] = [await gen(`${app}-blue`), await gen(`${app}-green`)];
    git.write('green.yaml', gitApp(app, { green: `registry.example/${app}:v2` })['green.yaml']);
    for (let i = 0; i < 5; i++) {
      const r = await fluxApply(flux());
      expect(r.code, r.stderr).toBe(0);
    }
    expect([await gen(`${app}-blue`), await gen(`${app}-green`)]).toEqual([b, g + 1]);
    const d = await fluxDiff(flux());
    expect(d.code, d.stdout + d.stderr).toBe(0);
    const k2 = await kubectlDiffServerSide({ dir: git.dir, namespace: ns.name, labels: fluxOwnerLabels(app) });
    expect(k2.code, k2.stdout + k2.stderr).toBe(0);
  });
});

describe('without the GitOps annotation or markers (a plain app)', () => {
  const app = 'plainshop';
  beforeAll(async () => {
    const files = gitApp(app);
    const objs = [files['blue.yaml'], files['green.yaml'], files['service.yaml']].map((o) => ({ ...o, metadata: { ...o.metadata, namespace: ns.name } }));
    const r = await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objs.slice(0, 2) }) });
    expect(r.code, r.stderr).toBe(0);
    await rolledOut(ns.name, [`${app}-blue`, `${app}-green`]);
    expect((await kubectl(['apply', '-f', '-'], { input: JSON.stringify(objs[2]) })).code).toBe(0);
  });

  it.each(['argocd-controller', 'kustomize-controller'])('a live-colour edit sent with the field manager %s is still refused', async (fm) => {
    const live = gitApp(app, { blue: `registry.example/${app}:v9` })['blue.yaml'];
    const r = await kubectl(['-n', ns.name, 'apply', '--server-side', '--force-conflicts', `--field-manager=${fm}`, '-f', '-'], {
      input: JSON.stringify(live),
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`(field manager ${fm})`);
    expect(await image(`${app}-blue`)).toBe(`registry.example/${app}:v1`);
  });

  it('kubectl set image by a person is still redirected', async () => {
    const r = await k('set', 'image', `deployment/${app}-blue`, `app=registry.example/${app}:v2`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`redirected to ${app}-green (idle)`);
  });
});
