// The Helm chart on the real local control plane (e2e global setup):
//  - `helm template` output for each TLS mode passes `kubectl apply --dry-run=server`;
//  - `helm install` succeeds (the webhook's pods land on kwok's fake nodes under Pod Security
//    "restricted" and do nothing), and `helm uninstall` removes everything cluster-scoped;
//  - the ValidatingAdmissionPolicy works for real with no webhook at all;
//  - `kubectl auth can-i --list` for the webhook's ServiceAccount shows only the chart's rights.
//
// Nothing here may ever make the API server call the installed webhooks: their Service is backed
// by kwok's fake pods (no process, pod IPs that route nowhere), and a call would both fail
// enrolled requests of other tests (failurePolicy Fail) and send traffic to a private address.
// So the release is installed with webhooks.namespaceMatchLabels naming a label no namespace
// carries: the configurations are created, checked and removed, and never match a request.
// The policy is scoped the same way to this file's own namespace, so it cannot refuse anything
// another test does.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, cpSync, existsSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { clusterEnv, createNamespace, helm, kubectl, kubectlJson, kubectlOk, waitFor, type TestNamespace } from './helpers/cluster.ts';
import { waitForNoForeignWebhooks } from './helpers/foreign-webhooks.ts';
import { runProcessOk } from './helpers/plugin-cli.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const CHART = path.join(REPO, 'charts/kube-bluegreen');
const NODE = path.join(REPO, 'node_modules/.bin/node');
const RUN = randomBytes(3).toString('hex');
const WEBHOOK_SCOPE = 'kube-bluegreen.test/chart-webhooks';
const POLICY_SCOPE = 'kube-bluegreen.test/chart-policy';
const RESTRICTED = {
  'pod-security.kubernetes.io/enforce': 'restricted',
  'pod-security.kubernetes.io/warn': 'restricted',
  'pod-security.kubernetes.io/audit': 'restricted',
};

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [k: string]: any };

async function helmOk(args: string[], timeoutMs = 120_000): Promise<string> {
  const r = await helm(args, { timeoutMs });
  if (r.code !== 0) throw new Error(`helm ${args.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/** helm template, parsed. `values` are --set-json pairs: dotted value paths to JSON values. */
async function template(release: string, namespace: string, values: Record<string, unknown>): Promise<Obj[]> {
  const args = ['template', release, CHART, '--namespace', namespace];
  for (const [k, v] of Object.entries(values)) args.push('--set-json', `${k}=${JSON.stringify(v)}`);
  return parseAllDocuments(await helmOk(args))
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => !!o);
}

function caBundle(): string {
  return Buffer.from(readFileSync(clusterEnv().caCert, 'utf8')).toString('base64');
}

const MODES: Record<string, Record<string, unknown>> = {
  selfSigned: {},
  certManager: { 'tls.mode': 'certManager' },
  existingSecret: { 'tls.mode': 'existingSecret', 'tls.existingSecret.name': 'webhook-tls', 'tls.existingSecret.caBundle': '' /* set below */ },
};

describe('rendered manifests pass kubectl apply --dry-run=server', () => {
  let ns: TestNamespace;
  beforeAll(async () => {
    ns = await createNamespace('chart-dry-run', { labels: RESTRICTED });
  });
  afterAll(async () => {
    await ns?.cleanup();
  });

  it.each(Object.keys(MODES))('%s', async (mode) => {
    const values = { ...MODES[mode] };
    if (mode === 'existingSecret') values['tls.existingSecret.caBundle'] = caBundle();
    // A release name of its own per mode: the cluster-scoped objects must not exist yet, so that
    // the dry run is a full validation of a create.
    const release = `dry-${mode.toLowerCase()}-${RUN}`;
    const objs = await template(release, ns.name, values);
    // cert-manager's CRDs are not installed on the local control plane, so the API server cannot
    // validate cert-manager.io objects (Issuer, Certificate): everything else is sent. Their
    // content is checked by test/unit/chart.test.ts.
    const certManagerKinds = objs.filter((o) => o.apiVersion.startsWith('cert-manager.io/'));
    expect(certManagerKinds.length).toBe(mode === 'certManager' ? 4 : 0);
    const sent = objs.filter((o) => !o.apiVersion.startsWith('cert-manager.io/'));
    const r = await kubectl(['apply', '--dry-run=server', '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: sent }),
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(sent.length);
    for (const l of lines) expect(l).toMatch(/ created \(server dry run\)$/);
    const kinds = new Set(sent.map((o) => o.kind));
    for (const k of [
      'Deployment',
      'Service',
      'ServiceAccount',
      'ClusterRole',
      'Role',
      'PodDisruptionBudget',
      'MutatingWebhookConfiguration',
      'ValidatingWebhookConfiguration',
      'ValidatingAdmissionPolicy',
      'ValidatingAdmissionPolicyBinding',
    ])
      expect(kinds.has(k), k).toBe(true);
  });
});

// ---------------------------------------------------------------------------

interface Pod {
  metadata: { name: string };
  spec: { nodeName?: string };
  status: { phase?: string };
}

function deployment(
  name: string,
  o: { app?: string; selector: Record<string, string>; template?: Record<string, string>; live?: string; annotations?: Record<string, string>; image?: string },
) {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name,
      labels: { ...(o.app ? { 'bluegreen.io/app': o.app } : {}), ...(o.live ? { 'bluegreen.io/live': o.live } : {}) },
      ...(o.annotations ? { annotations: o.annotations } : {}),
    },
    spec: {
      replicas: 1,
      selector: { matchLabels: o.selector },
      template: {
        metadata: { labels: o.template ?? o.selector },
        spec: { containers: [{ name: 'app', image: o.image ?? 'registry.example/app:v1' }] },
      },
    },
  };
}

function service(name: string, o: { app?: string; selector: Record<string, string>; annotations?: Record<string, string> }) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, labels: o.app ? { 'bluegreen.io/app': o.app } : {}, ...(o.annotations ? { annotations: o.annotations } : {}) },
    spec: { selector: o.selector, ports: [{ port: 80, targetPort: 8080 }] },
  };
}

/** Parses `kubectl auth can-i --list` (a fixed-width table) into "resource|urls|names|verbs" rows. */
function parseCanI(text: string): string[] {
  const lines = text.split('\n').filter((l) => l.trim());
  const header = lines.shift() ?? '';
  const cols = ['Resources', 'Non-Resource URLs', 'Resource Names', 'Verbs'].map((c) => header.indexOf(c));
  expect(
    cols.every((c) => c >= 0),
    header,
  ).toBe(true);
  return lines.map((l) => cols.map((start, i) => l.slice(start, cols[i + 1] ?? undefined).trim()).join('|'));
}

async function canIList(sa: string, namespace: string): Promise<string[]> {
  return parseCanI(await kubectlOk(['auth', 'can-i', '--list', `--as=${sa}`, '-n', namespace]));
}

describe('helm install on the local control plane', () => {
  const release = `kbg-${RUN}`;
  const fullname = `${release}-kube-bluegreen`;
  const policyName = `${fullname}-slot-labels`;
  let ns: TestNamespace;
  let apps: TestNamespace;
  let installed = false;

  beforeAll(async () => {
    // The release namespace enforces Pod Security "restricted": the webhook's pods are only
    // created if their spec meets it.
    ns = await createNamespace('chart-install', { labels: RESTRICTED });
    apps = await createNamespace('chart-policy', { labels: { [POLICY_SCOPE]: RUN } });
    await helmOk([
      'install',
      release,
      CHART,
      '--namespace',
      ns.name,
      // Scope both to this file (see the comment at the top). Not --wait: kwok marks the pods
      // Ready without running anything, so waiting proves nothing more than the pods below.
      '--set-json',
      `webhooks.namespaceMatchLabels=${JSON.stringify({ [WEBHOOK_SCOPE]: `none-${RUN}` })}`,
      '--set-json',
      `policy.namespaceMatchLabels=${JSON.stringify({ [POLICY_SCOPE]: RUN })}`,
    ]);
    installed = true;
  });

  afterAll(async () => {
    if (installed) await helm(['uninstall', release, '--namespace', ns.name, '--wait', '--timeout', '60s'], { timeoutMs: 90_000 });
    // Whatever happened above, leave no webhook configuration or policy of this release behind.
    await kubectl(['delete', 'mutatingwebhookconfiguration,validatingwebhookconfiguration', fullname, '--ignore-not-found']);
    await kubectl(['delete', 'validatingadmissionpolicybinding,validatingadmissionpolicy', policyName, '--ignore-not-found']);
    await apps?.cleanup();
    await ns?.cleanup();
  });

  it('runs 2 webhook pods on different kwok nodes, admitted under Pod Security "restricted"', async () => {
    const pods = await waitFor(
      async () => {
        const list = await kubectlJson<{ items: Pod[] }>(['-n', ns.name, 'get', 'pods', '-l', `app.kubernetes.io/instance=${release}`]);
        return list.items.length === 2 && list.items.every((p) => p.status.phase === 'Running' && p.spec.nodeName) && list.items;
      },
      { timeoutMs: 60_000, message: 'two Running webhook pods' },
    );
    const nodes = pods.map((p) => p.spec.nodeName!);
    expect(new Set(nodes).size).toBe(2);
    for (const n of nodes) expect(clusterEnv().nodes).toContain(n);
    const status = await helmOk(['status', release, '--namespace', ns.name, '-o', 'json']);
    expect(JSON.parse(status).info.status).toBe('deployed');
    const pdb = await kubectlJson(['-n', ns.name, 'get', 'pdb', fullname]);
    expect(pdb.spec.minAvailable).toBe(1);
  });

  it('installs both webhook configurations (scoped away from every namespace in this test run)', async () => {
    for (const kind of ['mutatingwebhookconfiguration', 'validatingwebhookconfiguration']) {
      const c = await kubectlJson(['get', kind, fullname]);
      for (const w of c.webhooks) {
        expect(w.clientConfig.service).toMatchObject({ namespace: ns.name, name: fullname, port: 443 });
        expect(w.namespaceSelector.matchLabels).toEqual({ [WEBHOOK_SCOPE]: `none-${RUN}` });
        expect(w.namespaceSelector.matchExpressions[0].values).toEqual(['kube-system', ns.name]);
      }
    }
  });

  it('the API server type-checks the policy without a warning', async () => {
    const status = await waitFor(async () => {
      const p = await kubectlJson(['get', 'validatingadmissionpolicy', policyName]);
      return p.status?.observedGeneration === p.metadata.generation && p.status;
    });
    expect(status.typeChecking?.expressionWarnings ?? []).toEqual([]);
  });

  it('no other webhook intercepts enrolled objects in the policy test namespace', { timeout: 200_000 }, async () => {
    // The policy tests below need the webhook to be down. Other test files register webhooks
    // of their own (and kill them to test failure), cluster-wide but for kube-system; in a serial
    // run they are gone by now. When files of several runs share one cluster, wait for them.
    await waitForNoForeignWebhooks(apps.name, [fullname], 180_000);
  });

  it('the policy takes effect within 30 s of the install (the API server loads policies asynchronously)', async () => {
    // A cold API server can answer the first create before its policy informer has the new
    // binding: probe with a server-side dry run (admission runs, nothing is stored) until refused.
    const probe = JSON.stringify(deployment('shop-probe', { app: 'shop', selector: { app: 'shop' } }));
    const stderr = await waitFor(
      async () => {
        const r = await kubectl(['-n', apps.name, 'apply', '--dry-run=server', '-f', '-'], { input: probe });
        return r.code !== 0 && r.stderr.includes(`ValidatingAdmissionPolicy '${policyName}'`) && r.stderr;
      },
      { timeoutMs: 30_000, message: `ValidatingAdmissionPolicy ${policyName} refusing a Deployment without the slot label` },
    );
    expect(stderr).toMatch(/it must carry the slot label slot/);
    expect((await kubectl(['-n', apps.name, 'get', 'deployment', 'shop-probe'])).stderr).toMatch(/NotFound/);
  });

  async function refused(obj: object, message: RegExp) {
    const r = await kubectl(['-n', apps.name, 'apply', '-f', '-'], { input: JSON.stringify(obj) });
    expect(r.code, r.stdout).not.toBe(0);
    expect(r.stderr).toContain(`ValidatingAdmissionPolicy '${policyName}'`);
    expect(r.stderr).toMatch(message);
  }
  async function accepted(obj: object) {
    await kubectlOk(['-n', apps.name, 'apply', '-f', '-'], { input: JSON.stringify(obj) });
  }

  it('the policy refuses an enrolled Deployment without a valid slot label', async () => {
    const noSlot =
      /Deployment (\S+) is enrolled in blue-green app shop \(label bluegreen\.io\/app\): it must carry the slot label slot with value blue or green/;
    await refused(deployment('shop-none', { app: 'shop', selector: { app: 'shop' } }), noSlot);
    await refused(deployment('shop-red', { app: 'shop', selector: { app: 'shop', slot: 'red' } }), noSlot);
    // In the selector only, not in the template (same other labels so the API server's own
    // selector-matches-template check passes).
    await refused(deployment('shop-half', { app: 'shop', selector: { app: 'shop' }, template: { app: 'shop', slot: 'blue' } }), noSlot);
    // Another key, named by the annotation: the default key does not do.
    await refused(
      deployment('shop-version', { app: 'shop', selector: { app: 'shop', slot: 'blue' }, annotations: { 'bluegreen.io/slot-label': 'version' } }),
      /must carry the slot label version/,
    );
    await accepted(
      deployment('shop-version', { app: 'shop', selector: { app: 'shop', version: 'blue' }, annotations: { 'bluegreen.io/slot-label': 'version' } }),
    );
    await accepted(deployment('shop-blue', { app: 'shop', selector: { app: 'shop', slot: 'blue' } }));
    // Not enrolled: the policy never looks.
    await accepted(deployment('plain', { selector: { app: 'plain' } }));
    // Enrolling an existing Deployment that lacks the slot label is refused too.
    const r = await kubectl(['-n', apps.name, 'label', 'deployment', 'plain', 'bluegreen.io/app=plain']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Deployment plain is enrolled in blue-green app plain/);
  });

  it('the policy refuses an enrolled Service whose selector lacks the slot key', async () => {
    const message =
      /Service web is enrolled in blue-green app web \(label bluegreen\.io\/app\): its spec\.selector must keep the slot key slot with value blue or green/;
    await refused(service('web', { app: 'web', selector: { app: 'web' } }), message);
    await refused(service('web', { app: 'web', selector: { app: 'web', slot: 'purple' } }), message);
    await accepted(service('web', { app: 'web', selector: { app: 'web', slot: 'blue' } }));
    const r = await kubectl(['-n', apps.name, 'patch', 'service', 'web', '--type=json', '-p', '[{"op":"remove","path":"/spec/selector/slot"}]']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
    // A change that keeps the slot key passes.
    await kubectlOk(['-n', apps.name, 'annotate', 'service', 'web', 'example.com/owner=team-a']);
    // Not enrolled: a Service selecting both colours is nobody's business.
    await accepted(service('both', { selector: { app: 'web' } }));
  });

  it('the policy refuses a pod-template change to the live colour, and lets everything else through', async () => {
    await accepted(deployment('cart-blue', { app: 'cart', live: 'true', selector: { app: 'cart', slot: 'blue' } }));
    await accepted(deployment('cart-green', { app: 'cart', live: 'false', selector: { app: 'cart', slot: 'green' } }));
    const live =
      /Deployment cart-blue is the live colour of blue-green app cart \(label bluegreen\.io\/live=true\): its pod template cannot change in place.*kubectl bg switch cart/;

    let r = await kubectl(['-n', apps.name, 'set', 'image', 'deployment/cart-blue', 'app=registry.example/app:v2']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(live);
    r = await kubectl(['-n', apps.name, 'set', 'env', 'deployment/cart-blue', 'MODE=new']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(live);
    await refused(deployment('cart-blue', { app: 'cart', live: 'true', selector: { app: 'cart', slot: 'blue' }, image: 'registry.example/app:v3' }), live);

    // The idle colour takes the change.
    await kubectlOk(['-n', apps.name, 'set', 'image', 'deployment/cart-green', 'app=registry.example/app:v2']);
    // The live colour may scale, be restarted (restartedAt only) and be relabelled.
    await kubectlOk(['-n', apps.name, 'scale', 'deployment/cart-blue', '--replicas=2']);
    await kubectlOk(['-n', apps.name, 'rollout', 'restart', 'deployment/cart-blue']);
    await kubectlOk(['-n', apps.name, 'label', 'deployment/cart-blue', 'team=a']);
    // What a switch does: the live label moves; then the old live colour is idle and takes changes.
    await kubectlOk(['-n', apps.name, 'label', '--overwrite', 'deployment/cart-green', 'bluegreen.io/live=true']);
    await kubectlOk(['-n', apps.name, 'label', '--overwrite', 'deployment/cart-blue', 'bluegreen.io/live=false']);
    await kubectlOk(['-n', apps.name, 'set', 'image', 'deployment/cart-blue', 'app=registry.example/app:v2']);
    r = await kubectl(['-n', apps.name, 'set', 'image', 'deployment/cart-green', 'app=registry.example/app:v4']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Deployment cart-green is the live colour of blue-green app cart/);
  });

  it('kubectl auth can-i --list shows only the chart’s rights for the webhook’s ServiceAccount', async () => {
    const sa = `system:serviceaccount:${ns.name}:${fullname}`;
    // What any authenticated identity may do (discovery, self reviews): subtracted.
    const baseline = new Set(await canIList(`system:serviceaccount:${ns.name}:no-such-account`, ns.name));
    const own = async (namespace: string) => (await canIList(sa, namespace)).filter((row) => !baseline.has(row)).sort();
    const clusterWide = [
      'cronjobs.batch|[]|[]|[get]',
      'deployments.apps|[]|[]|[get list watch patch]',
      'events|[]|[]|[create]',
      'horizontalpodautoscalers.autoscaling|[]|[]|[get list watch patch]',
      'jobs.batch|[]|[]|[get create]',
      `mutatingwebhookconfigurations.admissionregistration.k8s.io|[]|[${fullname}]|[get patch]`,
      'services|[]|[]|[get list watch patch]',
      'subjectaccessreviews.authorization.k8s.io|[]|[]|[create]',
      `validatingwebhookconfigurations.admissionregistration.k8s.io|[]|[${fullname}]|[get patch]`,
    ];
    // In any other namespace: the ClusterRole only.
    expect(await own(apps.name)).toEqual([...clusterWide].sort());
    // In its own namespace: plus the Role (its Lease; the record key's Secret; its self-signed certificate's Secret).
    expect(await own(ns.name)).toEqual(
      [
        ...clusterWide,
        'leases.coordination.k8s.io|[]|[]|[create]',
        `leases.coordination.k8s.io|[]|[${fullname}]|[get update]`,
        'secrets|[]|[]|[create]',
        `secrets|[]|[${fullname}-record-key]|[get]`,
        `secrets|[]|[${fullname}-tls]|[get update]`,
      ].sort(),
    );
  });

  it('helm uninstall removes the webhook configurations, the policy and the RBAC', async () => {
    await helmOk(['uninstall', release, '--namespace', ns.name, '--wait', '--timeout', '60s']);
    installed = false;
    for (const kind of ['mutatingwebhookconfiguration', 'validatingwebhookconfiguration', 'clusterrole', 'clusterrolebinding'])
      expect((await kubectl(['get', kind, fullname])).stderr, kind).toMatch(/NotFound/);
    for (const kind of ['validatingadmissionpolicy', 'validatingadmissionpolicybinding'])
      expect((await kubectl(['get', kind, policyName])).stderr, kind).toMatch(/NotFound/);
    // With the policy gone, what it refused is accepted.
    await waitFor(
      async () =>
        (await kubectl(['-n', apps.name, 'apply', '-f', '-'], { input: JSON.stringify(service('web', { app: 'web', selector: { app: 'web' } })) })).code === 0,
      {
        message: 'the policy to stop applying after uninstall',
      },
    );
  });
});

// ---------------------------------------------------------------------------

describe('the production bundle the image copies', () => {
  // What the Dockerfile's runtime stage holds: dist/src, production node_modules and
  // package.json, in a directory of its own. Built here the way the build stage does it
  // (npm ci without dev dependencies and without install scripts; tsc -p tsconfig.build.json),
  // then started from that directory against the local control plane.
  let dir = '';
  let ns: TestNamespace;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'kbg-bundle-'));
    ns = await createNamespace('chart-bundle');
  });
  afterAll(async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    await ns?.cleanup();
  });

  const run = (cmd: string, args: string[], cwd: string, timeoutMs: number) =>
    runProcessOk(cmd, args, { ...process.env, PATH: `${path.dirname(NODE)}:${process.env.PATH}` }, timeoutMs, cwd);

  function get(port: number, p: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port, path: p, rejectUnauthorized: false, timeout: 2000 }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    });
  }

  it('installs production dependencies only, starts from a clean directory and answers /healthz and /readyz', { timeout: 600_000 }, async () => {
    for (const f of ['package.json', 'package-lock.json']) cpSync(path.join(REPO, f), path.join(dir, f));
    // npm runs on the project's Node 24 (node_modules/.bin is first on PATH in run()).
    await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], dir, 480_000);
    // No dev tool made it in.
    for (const devOnly of ['typescript', 'vitest', 'autocannon', '@types/express', 'node'])
      expect(existsSync(path.join(dir, 'node_modules', devOnly)), devOnly).toBe(false);
    await run(
      NODE,
      [path.join(REPO, 'node_modules/typescript/bin/tsc'), '-p', path.join(REPO, 'tsconfig.build.json'), '--outDir', path.join(dir, 'dist')],
      REPO,
      300_000,
    );
    rmSync(path.join(dir, 'dist', 'plugin'), { recursive: true, force: true });
    expect(existsSync(path.join(dir, 'dist/src/webhook/main.js'))).toBe(true);

    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const env = clusterEnv();
    const child = spawn(
      NODE,
      [
        'dist/src/webhook/main.js',
        `--kubeconfig=${env.kubeconfig}`,
        `--listen=127.0.0.1:${port}`,
        '--self-signed',
        `--namespace=${ns.name}`,
        `--leader-election-id=bundle-${RUN}`,
        '--shutdown-delay=1',
        '--log-level=info',
      ],
      // Only the bundle directory: nothing from the repository is on the module path.
      { cwd: dir, env: { PATH: '/usr/bin:/bin', HOME: dir, NO_PROXY: '127.0.0.1,localhost' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let logs = '';
    child.stdout.on('data', (d: Buffer) => (logs += d.toString()));
    child.stderr.on('data', (d: Buffer) => (logs += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const health = await waitFor(async () => (await get(port, '/healthz')).status === 200, {
        timeoutMs: 30_000,
        message: `/healthz (logs: ${logs.slice(-2000)})`,
      });
      expect(health).toBe(true);
      await waitFor(async () => (await get(port, '/readyz')).status === 200, { timeoutMs: 30_000, message: '/readyz' });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
