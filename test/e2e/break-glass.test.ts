// Break-glass (issue 14) on the local control plane, with the webhook STOPPED:
//  1. an ordinary user's switch (a raw `kubectl patch service`) is refused: failurePolicy Fail,
//     nobody answers; so is their `kubectl bg rollback --break-glass` (they may not impersonate);
//  2. `kubectl bg rollback APP --break-glass` by a user an admin bound to the chart's ClusterRole
//     <fullname>-break-glass works: the Service selects the previous colour, the live labels
//     moved, and the history says break-glass;
//  3. a live-colour `kubectl set image` from the break-glass group is still refused, by the policy;
//  4. nothing else: the group breaking a slot label (Service or Deployment) is refused by the policy.
//
// The webhook is the real process, registered as `npm start` registers it (configurations.ts:
// failurePolicy Fail, the default break-glass group), scoped to this file's namespace, then
// SIGKILLed so its configurations stay, as in an outage. The policy and the break-glass
// ClusterRole are the chart's own (`helm template --show-only`), the policy scoped to this file's
// namespace. The two users are real: client certificates signed by the cluster CA, with the rights
// of a person who operates the app (a Role by user name), not system:masters.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { BREAK_GLASS_GROUP } from '../../src/core/labels.ts';
import { sampleApp } from '../fixtures/sample-app.ts';
import { applyApps } from './helpers/apps.ts';
import { apply, clusterEnv, createNamespace, helm, issueClusterCert, kubectl, kubectlJson, kubectlOk, type TestNamespace, waitFor } from './helpers/cluster.ts';
import { waitForNoForeignWebhooks } from './helpers/foreign-webhooks.ts';
import { kubectlBg, runProcess } from './helpers/plugin-cli.ts';
import { NODE, type RunningWebhook, startWebhook } from './helpers/webhook.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const CHART = path.join(REPO, 'charts/kube-bluegreen');
const PLUGIN = path.join(REPO, 'plugin/src/main.ts');
const RUN = randomBytes(3).toString('hex');
const RELEASE = `bg-${RUN}`;
const FULLNAME = `${RELEASE}-kube-bluegreen`;
const BREAK_GLASS_ROLE = `${FULLNAME}-break-glass`;
const POLICY = `${FULLNAME}-slot-labels`;
const POLICY_SCOPE = 'kube-bluegreen.test/break-glass-policy';
const ORDINARY = `ordinary-${RUN}`;
const ONCALL = `oncall-${RUN}`;
/** What the README tells an admin to create (and delete afterwards), named for this run. */
const BINDINGS = { role: `${BREAK_GLASS_ROLE}-${ONCALL}`, self: `impersonate-${ONCALL}` };

let ns: TestNamespace;
let wh: RunningWebhook | undefined;
let dir = '';
const kubeconfigs: Record<string, string> = {};
let created: string[] = [];

type Obj = { kind: string; metadata: { name: string }; [k: string]: any };

/** A kubeconfig for a user authenticated by a client certificate from the cluster CA (CN = user name). */
async function userKubeconfig(user: string): Promise<string> {
  const env = clusterEnv();
  const c = await issueClusterCert({ commonName: user, usage: 'client' });
  const file = path.join(dir, `${user}.kubeconfig`);
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'local', cluster: { server: env.apiserver, 'certificate-authority': env.caCert } }],
      users: [{ name: user, user: { 'client-certificate-data': b64(c.certPem), 'client-key-data': b64(c.keyPem) } }],
      contexts: [{ name: user, context: { cluster: 'local', user, namespace: ns.name } }],
      'current-context': user,
    }),
  );
  return file;
}

/** The built kubectl as that user (their own kubeconfig only). */
function kubectlAs(user: string, args: readonly string[]) {
  const env = clusterEnv();
  return runProcess(
    env.kubectl,
    ['--kubeconfig', kubeconfigs[user]!, '-n', ns.name, ...args],
    { ...process.env, HOME: env.home, KUBECONFIG: kubeconfigs[user]!, NO_PROXY: '127.0.0.1,localhost' },
    60_000,
  );
}

/** `kubectl bg` as that user. */
function bgAs(user: string, args: readonly string[]) {
  const env = clusterEnv();
  return runProcess(
    NODE,
    [PLUGIN, ...args, '-n', ns.name, '--kubeconfig', kubeconfigs[user]!],
    { ...process.env, HOME: env.home, KUBECONFIG: kubeconfigs[user]!, NO_PROXY: '127.0.0.1,localhost', NO_COLOR: '1' },
    120_000,
  );
}

/** As that user in the break-glass group (kubectl's own impersonation flags). */
const asBreakGlass = (user: string) => [`--as=${user}`, `--as-group=${BREAK_GLASS_GROUP}`];

const selector = async () => (await kubectlJson(['-n', ns.name, 'get', 'service', 'shop'])).spec.selector;
const liveLabel = async (d: string) => (await kubectlJson(['-n', ns.name, 'get', 'deployment', d])).metadata.labels['bluegreen.io/live'];
const image = async (d: string) => (await kubectlJson(['-n', ns.name, 'get', 'deployment', d])).spec.template.spec.containers[0].image;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'kbg-break-glass-'));
  ns = await createNamespace('break-glass', { labels: { [POLICY_SCOPE]: RUN } });
  await applyApps(ns.name, sampleApp({ namespace: ns.name, replicas: 1 }));
  for (const u of [ORDINARY, ONCALL]) kubeconfigs[u] = await userKubeconfig(u);

  // Both users operate the app: what kubectl bg and kubectl set image need in its namespace.
  await apply(
    [
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: 'app-operator', namespace: ns.name },
        rules: [
          { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'watch', 'patch', 'update'] },
          { apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch', 'patch', 'update'] },
          { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
          { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
        ],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'app-operator', namespace: ns.name },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'app-operator' },
        subjects: [ORDINARY, ONCALL].map((name) => ({ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name })),
      },
    ],
    { namespace: ns.name },
  );

  // The chart's policy (scoped to this namespace) and its break-glass ClusterRole, as rendered.
  const r = await helm([
    'template',
    RELEASE,
    CHART,
    '--namespace',
    'kube-bluegreen',
    '--show-only',
    'templates/policy.yaml',
    '--show-only',
    'templates/break-glass.yaml',
    '--set-json',
    `policy.namespaceMatchLabels=${JSON.stringify({ [POLICY_SCOPE]: RUN })}`,
  ]);
  if (r.code !== 0) throw new Error(`helm template: ${r.stderr}`);
  const objs = parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => !!o);
  expect(objs.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
    `ClusterRole/${BREAK_GLASS_ROLE}`,
    `ValidatingAdmissionPolicy/${POLICY}`,
    `ValidatingAdmissionPolicyBinding/${POLICY}`,
  ]);
  created = objs.map((o) => `${o.kind.toLowerCase()}/${o.metadata.name}`);
  await apply(objs);

  // What the README's troubleshooting tells an admin to run for the person on call.
  await kubectlOk(['create', 'clusterrolebinding', BINDINGS.role, `--clusterrole=${BREAK_GLASS_ROLE}`, `--user=${ONCALL}`]);
  await kubectlOk(['create', 'clusterrole', BINDINGS.self, '--verb=impersonate', '--resource=users', `--resource-name=${ONCALL}`]);
  await kubectlOk(['create', 'clusterrolebinding', BINDINGS.self, `--clusterrole=${BINDINGS.self}`, `--user=${ONCALL}`]);

  // The webhook, registered as npm start does; a first switch (blue -> green) while it runs,
  // so that there is something to roll back.
  wh = await startWebhook({ namespace: ns.name, configName: 'break-glass' });
  const sw = await kubectlBg(ns.name, ['switch', 'shop', '--wait']);
  if (sw.code !== 0) throw new Error(`kubectl bg switch: ${sw.stderr}`);
  expect((await selector()).slot).toBe('green');

  // Only this webhook (no npm start left running cluster-wide), and the policy loaded.
  await waitForNoForeignWebhooks(ns.name, [wh.configName], 180_000);
  const probe = JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'probe', labels: { 'bluegreen.io/app': 'probe' } },
    spec: {
      selector: { matchLabels: { app: 'probe' } },
      template: { metadata: { labels: { app: 'probe' } }, spec: { containers: [{ name: 'c', image: 'x' }] } },
    },
  });
  await waitFor(
    async () => {
      const p = await kubectl(['-n', ns.name, 'create', '--dry-run=server', '-f', '-'], { input: probe });
      return p.code !== 0 && p.stderr.includes(`ValidatingAdmissionPolicy '${POLICY}'`);
    },
    { timeoutMs: 30_000, message: `ValidatingAdmissionPolicy ${POLICY} in effect` },
  );

  // The outage: SIGKILL, so the configurations (failurePolicy Fail) stay and nothing answers.
  await wh.kill();
}, 300_000);

afterAll(async () => {
  await wh?.stop(); // dead: removes its configurations
  await kubectl(['delete', 'clusterrolebinding', BINDINGS.role, BINDINGS.self, '--ignore-not-found']);
  await kubectl(['delete', 'clusterrole', BINDINGS.self, '--ignore-not-found']);
  for (const o of created) await kubectl(['delete', o, '--ignore-not-found']);
  await ns?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('with the webhook stopped', () => {
  it('its configurations are still there, failurePolicy Fail, with the break-glass condition; nothing answers', async () => {
    const v = await kubectlJson(['get', 'validatingwebhookconfiguration', wh!.configName]);
    const services = v.webhooks.find((w: { name: string }) => w.name === 'services.validate.bluegreen.io');
    expect(services.failurePolicy).toBe('Fail');
    expect(services.matchConditions).toEqual([
      { name: 'not-break-glass', expression: `!has(request.userInfo.groups) || !('${BREAK_GLASS_GROUP}' in request.userInfo.groups)` },
    ]);
    expect(
      v.webhooks.find((w: { name: string }) => w.name === 'deployments.validate.bluegreen.io').matchConditions.map((c: { name: string }) => c.name),
    ).toEqual(['needs-a-look', 'not-break-glass']);
    await expect(wh!.get('/healthz')).rejects.toThrow();
  });

  it('(1) an ordinary switch by an ordinary user is refused: the webhook cannot be called', async () => {
    const r = await kubectlAs(ORDINARY, ['patch', 'service', 'shop', '-p', '{"spec":{"selector":{"slot":"blue"}}}']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/failed calling webhook "services\.validate\.bluegreen\.io"/);
    expect((await selector()).slot).toBe('green');
    // And a plain kubectl bg rollback, the same way.
    const bg = await bgAs(ORDINARY, ['rollback', 'shop']);
    expect(bg.code).not.toBe(0);
    expect(bg.stderr).toMatch(/failed calling webhook/);
    expect((await selector()).slot).toBe('green');
  });

  it('(1) nor can the ordinary user break the glass: they may not impersonate the group', async () => {
    const r = await bgAs(ORDINARY, ['rollback', 'shop', '--break-glass']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`break-glass: you may not act as ${ORDINARY} in group ${BREAK_GLASS_GROUP}`);
    expect(r.stderr).toMatch(/cannot impersonate/);
    const k = await kubectlAs(ORDINARY, ['patch', 'service', 'shop', ...asBreakGlass(ORDINARY), '-p', '{"spec":{"selector":{"slot":"blue"}}}']);
    expect(k.code).not.toBe(0);
    expect(k.stderr).toMatch(/cannot impersonate/);
    expect((await selector()).slot).toBe('green');
  });

  it('(2) kubectl bg rollback --break-glass by the user bound to the break-glass ClusterRole works, and history says so', async () => {
    const r = await bgAs(ONCALL, ['rollback', 'shop', '--break-glass', '--wait']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stderr).toContain(`WARNING: BREAK-GLASS rollback: acting as ${ONCALL} in group ${BREAK_GLASS_GROUP}`);
    expect(r.stdout).toContain('rollback shop in namespace');
    expect(r.stdout).toMatch(/Service shop sends traffic only to blue/);
    expect((await selector()).slot).toBe('blue');
    // The live labels moved with it (the reconciler that would is down): the policy now guards blue.
    expect(await liveLabel('shop-blue')).toBe('true');
    expect(await liveLabel('shop-green')).toBe('false');
    const h = await kubectlBg(ns.name, ['history', 'shop', '-o', 'json']);
    const items = JSON.parse(h.stdout).items;
    expect(items.at(-1)).toMatchObject({ kind: 'rollback', from: 'green', to: 'blue', by: ONCALL, breakGlass: true });
    expect(items.at(-2)).toMatchObject({ kind: 'switch', from: 'blue', to: 'green' });
    expect(items.at(-2).breakGlass).toBeUndefined();
    const table = await kubectlBg(ns.name, ['history', 'shop']);
    expect(table.stdout).toMatch(new RegExp(`rollback \\(break-glass\\)\\s+green\\s+blue\\s+\\S+\\s+${ONCALL}`));
  });

  it('(3) a live-colour template change from the break-glass group is still refused, by the policy', async () => {
    expect(await liveLabel('shop-blue')).toBe('true');
    const r = await kubectlAs(ONCALL, ['set', 'image', 'deployment/shop-blue', 'app=registry.example/shop:v2', ...asBreakGlass(ONCALL)]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`ValidatingAdmissionPolicy '${POLICY}'`);
    expect(r.stderr).toMatch(
      /Deployment shop-blue is the live colour of blue-green app shop \(label bluegreen\.io\/live=true\): its pod template cannot change in place/,
    );
    expect(await image('shop-blue')).toBe('registry.example/shop:v1');
    // The same without the group meets the stopped webhook instead.
    const plain = await kubectlAs(ONCALL, ['set', 'image', 'deployment/shop-blue', 'app=registry.example/shop:v2']);
    expect(plain.code).not.toBe(0);
    expect(plain.stderr).toMatch(/failed calling webhook "deployments\.mutate\.bluegreen\.io"/);
  });

  it('(4) nothing else: the group breaking a slot label is refused by the policy (Service and Deployment)', async () => {
    const svcRule =
      /Service shop is enrolled in blue-green app shop \(label bluegreen\.io\/app\): its spec\.selector must keep the slot key slot with value blue or green/;
    for (const patch of [
      ['-p', '{"spec":{"selector":{"slot":"purple"}}}'],
      ['--type=json', '-p', '[{"op":"remove","path":"/spec/selector/slot"}]'],
    ]) {
      const r = await kubectlAs(ONCALL, ['patch', 'service', 'shop', ...asBreakGlass(ONCALL), ...patch]);
      expect(r.code, patch.join(' ')).not.toBe(0);
      expect(r.stderr).toContain(`ValidatingAdmissionPolicy '${POLICY}'`);
      expect(r.stderr).toMatch(svcRule);
    }
    expect(await selector()).toEqual({ app: 'shop', slot: 'blue' });
    // An enrolled Deployment without its slot label (a new one: the policy bites on CREATE).
    const bad = JSON.stringify({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'shop-extra', labels: { 'bluegreen.io/app': 'shop' } },
      spec: {
        selector: { matchLabels: { app: 'shop', slot: 'red' } },
        template: { metadata: { labels: { app: 'shop', slot: 'red' } }, spec: { containers: [{ name: 'app', image: 'x' }] } },
      },
    });
    // The operator Role has no create: use the admin's rights in the break-glass group, so only the policy can refuse.
    const c = await kubectl(
      ['-n', ns.name, 'create', '--dry-run=server', '-f', '-', '--as=kubernetes-admin', '--as-group=system:masters', `--as-group=${BREAK_GLASS_GROUP}`],
      { input: bad },
    );
    expect(c.code).not.toBe(0);
    expect(c.stderr).toContain(`ValidatingAdmissionPolicy '${POLICY}'`);
    expect(c.stderr).toMatch(/Deployment shop-extra is enrolled in blue-green app shop .* it must carry the slot label slot with value blue or green/);
  });

  it('what the group may do is what the webhook would have redirected there anyway: a change to the idle colour goes through', async () => {
    // Control for (3): the group really skips the stopped webhook (without it, the same is refused).
    const plain = await kubectlAs(ONCALL, ['set', 'image', 'deployment/shop-green', 'app=registry.example/shop:v2']);
    expect(plain.code).not.toBe(0);
    expect(plain.stderr).toMatch(/failed calling webhook/);
    const r = await kubectlAs(ONCALL, ['set', 'image', 'deployment/shop-green', 'app=registry.example/shop:v2', ...asBreakGlass(ONCALL)]);
    expect(r.code, r.stderr).toBe(0);
    expect(await image('shop-green')).toBe('registry.example/shop:v2');
  });

  it('removing the bindings afterwards takes break-glass away again', async () => {
    await kubectlOk(['delete', 'clusterrolebinding', BINDINGS.role, BINDINGS.self]);
    await kubectlOk(['delete', 'clusterrole', BINDINGS.self]);
    const r = await waitFor(
      async () => {
        const x = await bgAs(ONCALL, ['switch', 'shop', '--break-glass']);
        return x.code === 1 && x;
      },
      { timeoutMs: 20_000, message: 'the impersonation refused once the bindings are gone' },
    );
    expect(r.stderr).toMatch(/cannot impersonate/);
    expect((await selector()).slot).toBe('blue');
  });
});
