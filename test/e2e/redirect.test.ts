// The redirect without writes inside admission, against the real control plane:
// forged reviews and requests the API server rejects after the webhook leave
// nothing behind; every way of changing the live colour is redirected the same;
// a planted record is ignored; the live labels follow a raw switch; another
// mutating webhook rewriting images neither changes the live colour nor makes
// its updates fail.
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleApp } from '../fixtures/sample-app.ts';
import { applyApps, rolledOut } from './helpers/apps.ts';
import { apply, createNamespace, issueClusterCert, kubectl, kubectlJson, kubectlOk, type TestNamespace, waitFor } from './helpers/cluster.ts';
import { kubectlBg } from './helpers/plugin-cli.ts';
import { type RunningWebhook, startWebhook } from './helpers/webhook.ts';

interface Dep {
  metadata: { name: string; uid: string; generation: number; resourceVersion: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { replicas: number; template: { metadata: { labels: Record<string, string> }; spec: { containers: { name: string; image: string }[] } } };
}

let ns: TestNamespace;
let wh: RunningWebhook;
const k = (...args: string[]) => kubectl(['-n', ns.name, ...args]);
const dep = (name: string) => kubectlJson<Dep>(['-n', ns.name, 'get', 'deployment', name]);
const image = async (name: string) => (await dep(name)).spec.template.spec.containers[0]!.image;
const PENDING = 'bluegreen.io/pending-change';
const landed = (name: string, img: string) => waitFor(async () => (await image(name)) === img, { timeoutMs: 10_000, message: `${img} to reach ${name}` });
/** Nothing happens to `name` for a while: its generation and template stay as they were. */
async function untouched(name: string, before: Dep, ms = 2_000): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
  const now = await dep(name);
  expect(now.metadata.generation).toBe(before.metadata.generation);
  expect(now.spec.template).toEqual(before.spec.template);
}

beforeAll(async () => {
  ns = await createNamespace('redirect');
  await applyApps(ns.name, [
    ...sampleApp({ namespace: ns.name, replicas: 2 }),
    ...sampleApp({ namespace: ns.name, app: 'web', image: 'registry.example/web:v1', replicas: 1 }),
  ]);
  wh = await startWebhook({ namespace: ns.name, configName: 'redirect' });
});

afterAll(async () => {
  if (process.env.KBG_DEBUG_DIR && wh) (await import('node:fs')).writeFileSync(`${process.env.KBG_DEBUG_DIR}/redirect-webhook.log`, wh.logs());
  await wh?.stop();
  await ns?.cleanup();
});

describe('a request that is not stored leaves nothing behind', () => {
  it('a forged review, sent by a process that is not the API server to a webhook with client authentication off: answered, nothing changed', async () => {
    // A second webhook process for another namespace, without client authentication: any process may reach it.
    const open = await startWebhook({
      namespace: `${ns.name}-none`,
      probeNamespace: 'default',
      configName: 'redirect-open',
      clientAuth: false,
      probe: async () => true,
    });
    try {
      const blue = await dep('shop-blue');
      const greenBefore = await dep('shop-green');
      const forged = {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: `forged-${randomBytes(4).toString('hex')}`,
          kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
          resource: { group: 'apps', version: 'v1', resource: 'deployments' },
          namespace: ns.name,
          name: 'shop-blue',
          operation: 'UPDATE',
          userInfo: { username: 'mallory', groups: ['system:masters'] },
          object: {
            ...blue,
            spec: { ...blue.spec, template: { ...blue.spec.template, spec: { containers: [{ name: 'app', image: 'evil.example/shop:owned' }] } } },
          },
          oldObject: blue,
        },
      };
      const r = await open.postAs(undefined, '/mutate', forged);
      expect(r.status).toBe(200);
      const answer = JSON.parse(r.body).response;
      expect(answer.allowed).toBe(true); // it is only an answer: nothing was written
      await untouched('shop-green', greenBefore);
      expect((await dep('shop-blue')).metadata.annotations?.[PENDING]).toBe(blue.metadata.annotations?.[PENDING]);
      expect(await image('shop-green')).not.toBe('evil.example/shop:owned');
    } finally {
      await open.stop();
    }
  });

  it('a patch the API server rejects after the webhook ran (revisionHistoryLimit -1): refused, the idle colour untouched, no record stored', async () => {
    const greenBefore = await dep('shop-green');
    const blueBefore = await dep('shop-blue');
    const patch = JSON.stringify([
      { op: 'replace', path: '/spec/template/spec/containers/0/image', value: 'registry.example/shop:rejected' },
      { op: 'replace', path: '/spec/revisionHistoryLimit', value: -1 },
    ]);
    const r = await k('patch', 'deployment/shop-blue', '--type=json', '-p', patch);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/revisionHistoryLimit/);
    await untouched('shop-green', greenBefore);
    const blue = await dep('shop-blue');
    expect(blue.metadata.resourceVersion).toBe(blueBefore.metadata.resourceVersion);
  });

  it('a server-side dry run: the same warning, nothing changed anywhere', async () => {
    const greenBefore = await dep('shop-green');
    const blueBefore = await dep('shop-blue');
    const r = await k('set', 'image', 'deployment/shop-blue', 'app=registry.example/shop:dry', '--dry-run=server');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('image change redirected to shop-green (idle)');
    await untouched('shop-green', greenBefore);
    expect((await dep('shop-blue')).metadata.resourceVersion).toBe(blueBefore.metadata.resourceVersion);
  });

  it('a request that times out (a slower webhook after ours): failed, nothing recorded, the idle colour untouched', async () => {
    const tls = await issueClusterCert({ commonName: 'slow', usage: 'server', ipAddresses: ['127.0.0.1'] });
    const server = https.createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
      req.resume();
      setTimeout(() => res.writeHead(500).end(), 4_000);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const name = `kbg-e2e-zz-slow-${randomBytes(3).toString('hex')}`;
    try {
      await apply({
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'MutatingWebhookConfiguration',
        metadata: { name },
        webhooks: [
          {
            name: 'slow.e2e.bluegreen.io',
            admissionReviewVersions: ['v1'],
            sideEffects: 'None',
            failurePolicy: 'Fail',
            timeoutSeconds: 2,
            clientConfig: { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/`, caBundle: Buffer.from(tls.caPem).toString('base64') },
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns.name } },
            objectSelector: { matchLabels: { 'bluegreen.io/app': 'web' } },
            rules: [{ apiGroups: ['apps'], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['deployments'] }],
          },
        ],
      });
      const greenBefore = await dep('web-green');
      const blueBefore = await dep('web-blue');
      const r = await waitFor(
        async () => {
          const x = await k('set', 'image', 'deployment/web-blue', 'app=registry.example/web:timeout');
          return x.stderr.includes('slow.e2e.bluegreen.io') ? x : undefined; // until the API server sees the slow webhook
        },
        { timeoutMs: 20_000, intervalMs: 500 },
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/failed calling webhook "slow.e2e.bluegreen.io".*(deadline|timeout|Timeout)/);
      await untouched('web-green', greenBefore);
      expect((await dep('web-blue')).metadata.annotations?.[PENDING]).toBe(blueBefore.metadata.annotations?.[PENDING]);
    } finally {
      await kubectl(['delete', 'mutatingwebhookconfiguration', name, '--ignore-not-found']);
      server.close();
    }
  });
});

describe('every way of changing the live colour is redirected the same', () => {
  it('kubectl replace (a manifest without the record): redirected', async () => {
    const blue = await dep('shop-blue');
    const manifest = JSON.parse(JSON.stringify(blue)) as Dep & { status?: unknown; metadata: Record<string, unknown> };
    delete manifest.status;
    manifest.spec.template.spec.containers[0]!.image = 'registry.example/shop:replaced';
    const r = await kubectl(['-n', ns.name, 'replace', '-f', '-'], { input: JSON.stringify(manifest) });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('image change redirected to shop-green (idle)');
    await landed('shop-green', 'registry.example/shop:replaced');
    expect(await image('shop-blue')).toBe('registry.example/shop:v1');
  });

  it('kubectl apply --server-side: redirected', async () => {
    const manifest = sampleApp({ namespace: ns.name, replicas: 2, image: 'registry.example/shop:ssa' })[0]!;
    const r = await kubectl(['-n', ns.name, 'apply', '--server-side', '--force-conflicts', '--field-manager=e2e', '-f', '-'], {
      input: JSON.stringify(manifest),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('image change redirected to shop-green (idle)');
    await landed('shop-green', 'registry.example/shop:ssa');
    expect(await image('shop-blue')).toBe('registry.example/shop:v1');
  });

  it('kubectl rollout undo of the live colour: its previous template goes to the idle colour', async () => {
    // green (ssa) becomes live; blue is given another version; then undo green: its previous
    // template (from its own history) is redirected to blue.
    await rolledOut(ns.name, ['shop-green']);
    const sw = await kubectlBg(ns.name, ['switch', 'shop', '--wait']);
    expect(sw.code, sw.stderr).toBe(0);
    await waitFor(async () => (await dep('shop-blue')).metadata.labels?.['bluegreen.io/live'] === 'false', { timeoutMs: 5_000 });
    await kubectlOk(['-n', ns.name, 'set', 'image', 'deployment/shop-blue', 'app=registry.example/shop:v3']);
    await rolledOut(ns.name, ['shop-blue']);
    const greenBefore = await dep('shop-green');
    const previous = (
      await kubectlJson<{
        items: {
          metadata: { annotations?: Record<string, string>; ownerReferences?: { name: string }[] };
          spec: { template: { spec: { containers: { image: string }[] } } };
        }[];
      }>(['-n', ns.name, 'get', 'replicasets'])
    ).items
      .filter((rs) => rs.metadata.ownerReferences?.some((o) => o.name === 'shop-green'))
      .map((rs) => ({
        revision: Number(rs.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? 0),
        image: rs.spec.template.spec.containers[0]!.image,
      }))
      .sort((a, b) => b.revision - a.revision)[1]!;
    const r = await k('rollout', 'undo', 'deployment/shop-green');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('redirected to shop-blue (idle)');
    await landed('shop-blue', previous.image);
    const green = await dep('shop-green');
    expect(green.spec.template).toEqual(greenBefore.spec.template);
  });
});

describe('a record is written only by kube-bluegreen', () => {
  it('a user who may patch the live Deployment plants one by hand: it is undone with a warning, nothing is applied', async () => {
    await apply(
      [
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'Role',
          metadata: { name: 'deployer', namespace: ns.name },
          rules: [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'patch', 'update'] }],
        },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: { name: 'mallory-deployer', namespace: ns.name },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'deployer' },
          subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'mallory' }],
        },
      ],
      { namespace: ns.name },
    );
    const live = (await kubectlJson<{ spec: { selector: Record<string, string> } }>(['-n', ns.name, 'get', 'service', 'shop'])).spec.selector.slot!;
    const [liveName, idleName] = live === 'blue' ? ['shop-blue', 'shop-green'] : ['shop-green', 'shop-blue'];
    const liveD = await dep(liveName);
    const idleBefore = await dep(idleName);
    // A record shaped like the real one, aimed at the idle colour.
    const fake = JSON.stringify({
      v: 1,
      template: { ...liveD.spec.template, spec: { containers: [{ name: 'app', image: 'evil.example/shop:planted' }] } },
      hash: 'x',
      bases: {},
      from: live,
      to: live === 'blue' ? 'green' : 'blue',
      minReplicas: 1,
      summary: 'image change',
      by: 'mallory',
      request: 'r',
      at: new Date().toISOString(),
      deployment: liveD.metadata.uid,
      base: liveD.metadata.resourceVersion,
      sig: 'AAAA',
    });
    const r = await waitFor(
      async () => {
        const x = await k('--as=mallory', 'annotate', '--overwrite', 'deployment', liveName, `${PENDING}=${fake}`);
        return x.code === 0 ? x : undefined; // RBAC caches take a moment
      },
      { timeoutMs: 15_000 },
    );
    expect(r.stderr).toContain(`ignored the change to annotation ${PENDING} of ${liveName}: only kube-bluegreen writes it`);
    expect((await dep(liveName)).metadata.annotations?.[PENDING]).toBe(liveD.metadata.annotations?.[PENDING]);
    await untouched(idleName, idleBefore);
  });
});

describe('the cluster kept consistent with the Service, whatever changed it', () => {
  it("a raw selector switch (the seeds' own): the live labels follow within 2 s", async () => {
    const live = (await kubectlJson<{ spec: { selector: Record<string, string> } }>(['-n', ns.name, 'get', 'service', 'web'])).spec.selector.slot!;
    const to = live === 'blue' ? 'green' : 'blue';
    await rolledOut(ns.name, [`web-${to}`]);
    await kubectlOk(['-n', ns.name, 'patch', 'service/web', '-p', JSON.stringify({ spec: { selector: { slot: to } } })]);
    const t0 = Date.now();
    await waitFor(
      async () =>
        (await dep(`web-${to}`)).metadata.labels?.['bluegreen.io/live'] === 'true' &&
        (await dep(`web-${live}`)).metadata.labels?.['bluegreen.io/live'] === 'false',
      { timeoutMs: 2_000, intervalMs: 50, message: 'the live labels to follow the Service' },
    );
    console.log(`live labels healed ${Date.now() - t0} ms after a raw selector switch`);
  });

  it('switch, then rollback inside the warm window: the live colour is never scaled down', async () => {
    await kubectlOk(['-n', ns.name, 'annotate', '--overwrite', 'service/web', 'bluegreen.io/scale-down-delay=2s']);
    const live = (await kubectlJson<{ spec: { selector: Record<string, string> } }>(['-n', ns.name, 'get', 'service', 'web'])).spec.selector.slot!;
    const other = live === 'blue' ? 'green' : 'blue';
    await rolledOut(ns.name, [`web-${other}`]);
    expect((await kubectlBg(ns.name, ['switch', 'web'])).code).toBe(0);
    expect((await kubectlBg(ns.name, ['rollback', 'web'])).code).toBe(0);
    await new Promise((r) => setTimeout(r, 4_000));
    expect((await dep(`web-${live}`)).spec.replicas).toBe(1);
    await waitFor(async () => (await dep(`web-${other}`)).spec.replicas === 0, {
      timeoutMs: 10_000,
      message: `web-${other} scaled down after its warm window`,
    });
    expect((await dep(`web-${live}`)).spec.replicas).toBe(1);
  });
});

describe("an app's objects in their own order (seed 003: slot label `version`, an active and a preview Service)", () => {
  /** Seed 003's three files, enrolled: two Deployments labelled version=blue|green, then the Services in one file. */
  function seedFiles(app: string): Record<string, object[]> {
    const dep = (colour: string) => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: `${app}-${colour}`, namespace: ns.name, labels: { app, version: colour, 'bluegreen.io/app': app } },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app, version: colour } },
        template: { metadata: { labels: { app, version: colour } }, spec: { containers: [{ name: 'app', image: `registry.example/${app}:1.0.0` }] } },
      },
    });
    const svc = (name: string, role: string, colour: string) => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name,
        namespace: ns.name,
        labels: { app, 'bluegreen.io/app': app },
        annotations: { 'bluegreen.io/role': role, 'bluegreen.io/slot-label': 'version' },
      },
      spec: { selector: { app, version: colour }, ports: [{ port: 80, targetPort: 8080 }] },
    });
    return {
      'deployment-blue.yaml': [dep('blue')],
      'deployment-green.yaml': [dep('green')],
      'service-blue-green.yaml': [svc(`${app}-active`, 'active', 'blue'), svc(`${app}-preview`, 'preview', 'green')],
    };
  }
  async function applyInOrder(files: Record<string, object[]>, order: string[]) {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'kbg-seed-'));
    order.forEach((f, i) => writeFileSync(join(dir, `${i}-${f}`), files[f]!.map((o) => JSON.stringify(o)).join('\n---\n')));
    return kubectl(['-n', ns.name, 'apply', '-f', dir]);
  }

  it.each([
    {
      name: "the seed's order (kubectl apply -f dir/: Deployments, then the Services)",
      app: 'engops',
      order: ['deployment-blue.yaml', 'deployment-green.yaml', 'service-blue-green.yaml'],
    },
    { name: 'the Services first, then the Deployments', app: 'engrev', order: ['service-blue-green.yaml', 'deployment-green.yaml', 'deployment-blue.yaml'] },
  ])('$name: admitted as is; then a change to the live colour is redirected', async ({ app, order }) => {
    const r = await applyInOrder(seedFiles(app), order);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('denied');
    await rolledOut(ns.name, [`${app}-blue`, `${app}-green`]);
    const x = await k('set', 'image', `deployment/${app}-blue`, `app=registry.example/${app}:2.0.0`);
    expect(x.code, x.stderr).toBe(0);
    expect(x.stderr).toContain(`redirected to ${app}-green (idle)`);
    await landed(`${app}-green`, `registry.example/${app}:2.0.0`);
    expect(await image(`${app}-blue`)).toBe(`registry.example/${app}:1.0.0`);
  });
});

describe('another mutating webhook rewriting images (a registry mirror, a tag resolved to a digest)', () => {
  /** A webhook of the test's own: rewrites registry.example/ to mirror.example/ in every container image. */
  async function rewriter(name: string) {
    const tls = await issueClusterCert({ commonName: 'rewriter', usage: 'server', ipAddresses: ['127.0.0.1'] });
    const server = https.createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const review = JSON.parse(Buffer.concat(chunks).toString());
        const cs: { image?: string }[] = review.request.object?.spec?.template?.spec?.containers ?? [];
        const ops = cs.flatMap((c, i) =>
          c.image?.startsWith('registry.example/')
            ? [{ op: 'replace', path: `/spec/template/spec/containers/${i}/image`, value: c.image.replace('registry.example/', 'mirror.example/') }]
            : [],
        );
        const response: Record<string, unknown> = { uid: review.request.uid, allowed: true };
        if (ops.length) Object.assign(response, { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(ops)).toString('base64') });
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    await apply({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name },
      webhooks: [
        {
          name: 'rewrite.e2e.bluegreen.io',
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          failurePolicy: 'Fail',
          clientConfig: { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/`, caBundle: Buffer.from(tls.caPem).toString('base64') },
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns.name } },
          objectSelector: { matchLabels: { 'bluegreen.io/app': 'mir' } },
          rules: [{ apiGroups: ['apps'], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['deployments'] }],
        },
      ],
    });
    return {
      close: async () => {
        await kubectl(['delete', 'mutatingwebhookconfiguration', name, '--ignore-not-found']);
        server.close();
      },
    };
  }

  it.each([
    // Configurations are called in name order: kbg-e2e-aa-* before ours (kbg-e2e-redirect-*), kbg-e2e-zz-* after.
    { order: 'before ours', name: 'kbg-e2e-aa-rewrite' },
    { order: 'after ours, installed after the live colour was stored (its image not rewritten yet)', name: 'kbg-e2e-zz-rewrite' },
  ])('$order: the live colour never changes, its updates do not fail, the idle colour gets the change (rewritten)', async ({ name }) => {
    await applyApps(ns.name, sampleApp({ namespace: ns.name, app: 'mir', image: 'registry.example/mir:v1', replicas: 1 }));
    const rw = await rewriter(`${name}-${randomBytes(3).toString('hex')}`);
    try {
      // Until the API server calls the rewriter: a server dry run of an image change on the idle colour comes back rewritten.
      await waitFor(
        async () => {
          const x = await k(
            'set',
            'image',
            '--dry-run=server',
            'deployment/mir-green',
            'app=registry.example/mir:probe',
            '-o',
            'jsonpath={.spec.template.spec.containers[0].image}',
          );
          return x.code === 0 && x.stdout.startsWith('mirror.example/');
        },
        { timeoutMs: 20_000, intervalMs: 300, message: 'the rewriter to be called' },
      );
      const blueBefore = await dep('mir-blue');
      const tag = `v${randomBytes(2).toString('hex')}`;
      const r = await k('set', 'image', 'deployment/mir-blue', `app=registry.example/mir:${tag}`);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('redirected to mir-green (idle)');
      await landed('mir-green', `mirror.example/mir:${tag}`);
      expect((await dep('mir-blue')).spec.template).toEqual(blueBefore.spec.template);
      // A replicas-only update of the live colour goes through as well.
      expect((await k('scale', 'deployment/mir-blue', '--replicas=2')).code).toBe(0);
      expect((await dep('mir-blue')).spec.template).toEqual(blueBefore.spec.template);
    } finally {
      await rw.close();
      // The Service first: while it selects a colour, that colour may not be deleted.
      await k('delete', 'service', '-l', 'bluegreen.io/app=mir', '--wait=false');
      await waitFor(async () => (await k('delete', 'deployment', '-l', 'bluegreen.io/app=mir', '--wait=false')).code === 0, { timeoutMs: 10_000 });
      await waitFor(
        async () => (await kubectlJson<{ items: unknown[] }>(['-n', ns.name, 'get', 'deployments', '-l', 'bluegreen.io/app=mir'])).items.length === 0,
        { timeoutMs: 20_000 },
      );
    }
  });
});
