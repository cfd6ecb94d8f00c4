// Proves the GitOps appliers (test/e2e/helpers/appliers.ts, test/gitops/flux-apply) send
// what Argo CD and Flux send, on a plain app that is not enrolled (no bluegreen.io/app
// label: no webhook of ours is involved). Identities are checked with a
// ValidatingAdmissionPolicy that refuses one probe object and names the requesting
// user in its message: the apiserver's own word on who asked.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ARGO_KIND_ORDER,
  ARGO_TRACKING_ANNOTATION,
  ARGO_USER,
  FLUX_USER,
  argoDiffServerSide,
  argoSync,
  ensureAppliersRbac,
  fluxApply,
  fluxDiff,
  fluxOwnerLabels,
  kubectlDiffServerSide,
  manifestDir,
  sortSyncTasks,
  type Manifest,
} from './helpers/appliers.ts';
import { apply, createNamespace, kubectl, kubectlJson, kubectlOk, waitFor, type TestNamespace } from './helpers/cluster.ts';

interface ManagedField {
  manager: string;
  operation: string;
}
interface Obj {
  metadata: {
    name: string;
    generation?: number;
    resourceVersion: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    managedFields?: ManagedField[];
  };
  spec?: { template?: { spec: { containers: { name: string; image: string }[] } } };
}

const PROBE_LABEL = 'appliers.kube-bluegreen.test/refuse';

function app(image = 'registry.example/web:v1'): Manifest[] {
  const labels = { app: 'web' };
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', labels },
      spec: {
        replicas: 2,
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: { containers: [{ name: 'web', image, ports: [{ containerPort: 8080 }] }] } },
      },
    },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', labels }, spec: { selector: labels, ports: [{ port: 80, targetPort: 8080 }] } },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'web-config', labels }, data: { greeting: 'hello' } },
  ];
}

const probe: Manifest = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'probe', labels: { [PROBE_LABEL]: 'true' } }, data: { a: 'b' } };

const managers = (o: Obj) => (o.metadata.managedFields ?? []).map((f) => `${f.manager}/${f.operation}`).sort();
const image = (o: Obj) => o.spec?.template?.spec.containers[0]?.image;

/** A policy that refuses labelled ConfigMaps in the given namespaces, naming who asked. */
async function identityProbePolicy(namespaces: string[]): Promise<{ name: string; remove: () => Promise<void> }> {
  const name = `kbg-e2e-appliers-${randomBytes(3).toString('hex')}`;
  await apply([
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['configmaps'] }],
        },
        validations: [{ expression: 'false', messageExpression: "'refused for user=' + request.userInfo.username" }],
      },
    },
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name },
      spec: {
        policyName: name,
        validationActions: ['Deny'],
        matchResources: {
          namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: namespaces }] },
          objectSelector: { matchLabels: { [PROBE_LABEL]: 'true' } },
        },
      },
    },
  ]);
  // The policy reaches admission through an informer: wait until it refuses (a server dry run changes nothing).
  for (const ns of namespaces) {
    await waitFor(
      async () => {
        const r = await kubectl(['-n', ns, 'apply', '--dry-run=server', '-f', '-'], { input: JSON.stringify(probe) });
        return r.code !== 0 && r.stderr.includes('refused for user=');
      },
      { message: `policy ${name} in force in ${ns}` },
    );
  }
  return {
    name,
    remove: async () => {
      await kubectlOk(['delete', 'validatingadmissionpolicybinding,validatingadmissionpolicy', name, '--ignore-not-found']);
    },
  };
}

let fluxNs: TestNamespace;
let argoNs: TestNamespace;
let policy: { remove: () => Promise<void> };

beforeAll(async () => {
  await ensureAppliersRbac();
  [fluxNs, argoNs] = await Promise.all([createNamespace('appliers-flux'), createNamespace('appliers-argo')]);
  policy = await identityProbePolicy([fluxNs.name, argoNs.name]);
});

afterAll(async () => {
  await policy?.remove();
  await Promise.all([fluxNs?.cleanup(), argoNs?.cleanup()]);
});

describe('Flux emulator (flux-apply: kustomize-controller apply, flux diff)', () => {
  const ks = 'web-app';
  let git: ReturnType<typeof manifestDir>;
  beforeAll(() => {
    git = manifestDir({ 'app.yaml': app() });
  });
  afterAll(() => git?.remove());
  const opts = () => ({ dir: git.dir, name: ks, targetNamespace: fluxNs.name });
  const getDeploy = () => kubectlJson<Obj>(['-n', fluxNs.name, 'get', 'deployment', 'web', '--show-managed-fields']);

  it('before the first apply, flux diff reports every object to be created (exit 1)', async () => {
    const d = await fluxDiff(opts());
    expect(d.code, d.stderr).toBe(1);
    expect(d.created.sort()).toEqual([`ConfigMap/${fluxNs.name}/web-config`, `Deployment/${fluxNs.name}/web`, `Service/${fluxNs.name}/web`]);
  });

  it('apply creates the objects with the owner labels, field manager kustomize-controller (Apply) and nothing else of ours', async () => {
    const r = await fluxApply(opts());
    expect(r.code, r.stderr).toBe(0);
    expect(r.changes).toEqual([
      { subject: `ConfigMap/${fluxNs.name}/web-config`, action: 'created' },
      { subject: `Service/${fluxNs.name}/web`, action: 'created' },
      { subject: `Deployment/${fluxNs.name}/web`, action: 'created' },
    ]);
    for (const kind of ['deployment/web', 'service/web', 'configmap/web-config']) {
      const o = await kubectlJson<Obj>(['-n', fluxNs.name, 'get', kind, '--show-managed-fields']);
      expect(o.metadata.labels, kind).toMatchObject({
        'kustomize.toolkit.fluxcd.io/name': ks,
        'kustomize.toolkit.fluxcd.io/namespace': 'flux-system',
        app: 'web',
      });
      expect(o.metadata.managedFields?.find((f) => f.manager === 'kustomize-controller')?.operation, kind).toBe('Apply');
      expect(
        managers(o).filter((m) => m.startsWith('kubectl')),
        kind,
      ).toEqual([]);
      expect(o.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration'], kind).toBeUndefined();
    }
  });

  it('right after, flux diff and kubectl diff --server-side are clean (exit 0) and a second apply changes nothing', async () => {
    const d = await fluxDiff(opts());
    expect(d.code, d.stdout + d.stderr).toBe(0);
    const k = await kubectlDiffServerSide({ dir: git.dir, namespace: fluxNs.name, labels: fluxOwnerLabels(ks) });
    expect(k.code, k.stdout + k.stderr).toBe(0);
    // The folder as it is lacks the owner labels Flux applied: the same manager would drop them.
    const bare = await kubectlDiffServerSide({ dir: git.dir, namespace: fluxNs.name });
    expect(bare.code, bare.stderr).toBe(1);
    expect(bare.stdout).toMatch(/^-\s+kustomize\.toolkit\.fluxcd\.io\/name: web-app$/m);
    const before = await getDeploy();
    const r = await fluxApply(opts());
    expect(r.code, r.stderr).toBe(0);
    expect(r.changes.map((c) => c.action)).toEqual(['unchanged', 'unchanged', 'unchanged']);
    expect((await getDeploy()).metadata.generation).toBe(before.metadata.generation);
  });

  it('kubectl set image on the cluster is drift for flux diff and kubectl diff (exit 1); apply puts Git back', async () => {
    await kubectlOk(['-n', fluxNs.name, 'set', 'image', 'deployment/web', 'web=registry.example/web:hotfix']);
    expect(image(await getDeploy())).toBe('registry.example/web:hotfix');

    const d = await fluxDiff(opts());
    expect(d.code, d.stderr).toBe(1);
    expect(d.drifted).toEqual([`Deployment/${fluxNs.name}/web`]);
    expect(d.stdout).toContain('registry.example/web:hotfix');
    const k = await kubectlDiffServerSide({ dir: git.dir, namespace: fluxNs.name, labels: fluxOwnerLabels(ks) });
    expect(k.code, k.stderr).toBe(1);
    expect(k.stdout).toMatch(/^\+\s+- image: registry\.example\/web:v1$/m);

    const r = await fluxApply(opts());
    expect(r.code, r.stderr).toBe(0);
    expect(r.changes).toContainEqual({ subject: `Deployment/${fluxNs.name}/web`, action: 'configured' });
    expect(r.changes.filter((c) => c.action !== 'unchanged')).toHaveLength(1);
    expect(image(await getDeploy())).toBe('registry.example/web:v1');
    expect((await fluxDiff(opts())).code).toBe(0);
  });

  it('requests are made as kustomize-controller; a refused dry run fails the apply (exit 1, the apiserver message) and applies nothing of the stage', async () => {
    const bad = manifestDir({ 'app.yaml': app('registry.example/web:v2'), 'probe.yaml': probe });
    try {
      const o = { ...opts(), dir: bad.dir };
      const r = await fluxApply(o);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`ConfigMap/${fluxNs.name}/probe dry-run failed`);
      expect(r.stderr).toContain(`refused for user=${FLUX_USER}`);
      expect(image(await getDeploy())).toBe('registry.example/web:v1'); // v2 was in the same stage
      const d = await fluxDiff(o);
      expect(d.code).toBe(2);
      expect(d.stderr).toContain(`refused for user=${FLUX_USER}`);
      expect(d.drifted).toEqual([`Deployment/${fluxNs.name}/web`]); // the others are still diffed
      // --as is honoured: another identity is named by the apiserver.
      const other = await fluxApply({ ...o, as: 'system:serviceaccount:flux-system:someone-else' });
      expect(other.code).toBe(1);
      expect(other.stderr).toMatch(/someone-else.*cannot|cannot.*someone-else|forbidden/i);
    } finally {
      bad.remove();
    }
  });
});

describe('Argo CD emulator (auto-sync, client-side apply)', () => {
  const appName = 'web-app';
  let git: ReturnType<typeof manifestDir>;
  beforeAll(() => {
    git = manifestDir({ 'deployment.yaml': app()[0]!, 'service.yaml': app()[1]!, 'configmap.yaml': app()[2]! });
  });
  afterAll(() => git?.remove());
  const opts = () => ({ dir: git.dir, namespace: argoNs.name, app: appName });

  it('orders a sync as gitops-engine does: wave, then kind (Service before Deployment), then name', () => {
    expect(ARGO_KIND_ORDER.indexOf('Service')).toBeLessThan(ARGO_KIND_ORDER.indexOf('Deployment'));
    const m = (kind: string, name: string, wave?: string): Manifest => ({
      apiVersion: 'v1',
      kind,
      metadata: { name, ...(wave ? { annotations: { 'argocd.argoproj.io/sync-wave': wave } } : {}) },
    });
    const sorted = sortSyncTasks([
      m('Deployment', 'a'),
      m('Widget', 'a'),
      m('Service', 'b'),
      m('Service', 'a'),
      m('Namespace', 'z'),
      m('Deployment', 'early', '-1'),
    ]);
    expect(sorted.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'Deployment/early',
      'Namespace/z',
      'Service/a',
      'Service/b',
      'Deployment/a',
      'Widget/a',
    ]);
  });

  it('three rounds: all applied in kind order, idempotent (generation unchanged, kubectl says unchanged), tracking annotation, manager argocd-controller (Update)', async () => {
    const first = await argoSync(opts());
    expect(first.phase, JSON.stringify(first.results)).toBe('Succeeded');
    expect(first.results.map((r) => `${r.kind}/${r.name}`)).toEqual(['ConfigMap/web-config', 'Service/web', 'Deployment/web']);
    expect(first.results.every((r) => r.ok && / created$/.test(r.message))).toBe(true);
    const getAll = async () =>
      Promise.all(
        ['configmap/web-config', 'service/web', 'deployment/web'].map((k) => kubectlJson<Obj>(['-n', argoNs.name, 'get', k, '--show-managed-fields'])),
      );
    const after1 = await getAll();
    for (const round of [2, 3]) {
      const r = await argoSync(opts());
      expect(r.phase, `round ${round}`).toBe('Succeeded');
      expect(
        r.results.map((x) => x.message.split(' ').pop()),
        `round ${round}`,
      ).toEqual(['unchanged', 'unchanged', 'unchanged']);
    }
    const after3 = await getAll();
    expect(after3.map((o) => o.metadata.generation)).toEqual(after1.map((o) => o.metadata.generation));
    const [cm, svc, deploy] = after3;
    expect(cm!.metadata.annotations?.[ARGO_TRACKING_ANNOTATION]).toBe(`${appName}:/ConfigMap:${argoNs.name}/web-config`);
    expect(svc!.metadata.annotations?.[ARGO_TRACKING_ANNOTATION]).toBe(`${appName}:/Service:${argoNs.name}/web`);
    expect(deploy!.metadata.annotations?.[ARGO_TRACKING_ANNOTATION]).toBe(`${appName}:apps/Deployment:${argoNs.name}/web`);
    for (const o of after3) {
      expect(o.metadata.managedFields?.find((f) => f.manager === 'argocd-controller')?.operation, o.metadata.name).toBe('Update');
      expect(
        managers(o).filter((m) => m.startsWith('kubectl')),
        o.metadata.name,
      ).toEqual([]);
      // client-side apply keeps its last-applied annotation, tracking id included
      expect(o.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration'], o.metadata.name).toContain(ARGO_TRACKING_ANNOTATION);
    }
    const d = await argoDiffServerSide(opts());
    expect(d.code, d.stdout + d.stderr).toBe(0);
  });

  it('after kubectl set image, the server-side diff shows drift and the next round puts Git back', async () => {
    await kubectlOk(['-n', argoNs.name, 'set', 'image', 'deployment/web', 'web=registry.example/web:hotfix']);
    const d = await argoDiffServerSide(opts());
    expect(d.code, d.stderr).toBe(1);
    expect(d.stdout).toContain('registry.example/web:hotfix');
    const r = await argoSync(opts());
    expect(r.phase).toBe('Succeeded');
    expect(r.results.find((x) => x.kind === 'Deployment')?.message).toMatch(/configured$/);
    expect(image(await kubectlJson<Obj>(['-n', argoNs.name, 'get', 'deployment', 'web']))).toBe('registry.example/web:v1');
  });

  it('requests are made as the application controller; a refused object fails the round, the others of the wave still apply', async () => {
    git.write('deployment.yaml', app('registry.example/web:v2')[0]!);
    git.write('probe.yaml', probe);
    try {
      for (const round of [1, 2]) {
        const r = await argoSync(opts());
        expect(r.phase, `round ${round}`).toBe('Failed');
        const refused = r.results.filter((x) => !x.ok);
        expect(
          refused.map((x) => x.name),
          `round ${round}`,
        ).toEqual(['probe']);
        expect(refused[0]!.skipped).toBe(false);
        expect(refused[0]!.message).toContain(`refused for user=${ARGO_USER}`);
        expect(r.results.find((x) => x.kind === 'Deployment')?.message, `round ${round}`).toMatch(round === 1 ? /configured$/ : /unchanged$/);
      }
      expect(image(await kubectlJson<Obj>(['-n', argoNs.name, 'get', 'deployment', 'web']))).toBe('registry.example/web:v2');
      const d = await argoDiffServerSide(opts());
      expect(d.code).toBeGreaterThan(1);
      expect(d.stderr).toContain(`refused for user=${ARGO_USER}`);
    } finally {
      git.remove();
    }
  });
});
