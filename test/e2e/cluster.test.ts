// Proves the local control plane is a real Kubernetes: nodes, Deployments and
// rollouts, Services/EndpointSlices, and a mutating admission webhook reached
// over HTTPS with its caBundle verified. Everything goes through the built kubectl.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  apply,
  clusterEnv,
  createNamespace,
  generateCA,
  issueClusterCert,
  kubectl,
  kubectlJson,
  kubectlOk,
  waitFor,
  type TestNamespace,
} from './helpers/cluster.ts';

interface Pod {
  metadata: { name: string; labels?: Record<string, string> };
  spec: { nodeName?: string; containers: { image: string }[] };
  status: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] };
}
interface ReplicaSet {
  metadata: { name: string };
  spec: { replicas?: number; template: { spec: { containers: { image: string }[] } } };
  status: { replicas?: number; readyReplicas?: number; availableReplicas?: number };
}
interface EndpointSlice {
  endpoints?: { addresses: string[]; conditions?: { ready?: boolean } }[];
}

const podReady = (p: Pod) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

function deployment(name: string, labels: Record<string, string>, replicas: number, image = 'registry.example/app:v1') {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: { containers: [{ name: 'app', image, ports: [{ containerPort: 8080 }] }] },
      },
    },
  };
}

async function readyPodIPs(ns: string, selector: string): Promise<string[]> {
  const pods = await kubectlJson<{ items: Pod[] }>(['-n', ns, 'get', 'pods', '-l', selector]);
  return pods.items
    .filter(podReady)
    .map((p) => p.status.podIP ?? '')
    .sort();
}

async function readyEndpointIPs(ns: string, service: string): Promise<string[]> {
  const slices = await kubectlJson<{ items: EndpointSlice[] }>(['-n', ns, 'get', 'endpointslices', '-l', `kubernetes.io/service-name=${service}`]);
  return slices.items
    .flatMap((s) => s.endpoints ?? [])
    .filter((e) => e.conditions?.ready !== false)
    .flatMap((e) => e.addresses)
    .sort();
}

let ns: TestNamespace;

beforeAll(async () => {
  ns = await createNamespace('e2e-cluster');
});

afterAll(async () => {
  await ns?.cleanup();
});

describe('local control plane', () => {
  it('runs the pinned version, with the built kubectl', async () => {
    const v = await kubectlJson<{ clientVersion: { gitVersion: string }; serverVersion: { gitVersion: string } }>(['version']);
    expect(v.serverVersion.gitVersion).toBe('v1.36.3');
    expect(v.clientVersion.gitVersion).toBe('v1.36.3');
    expect(clusterEnv().kubectl).not.toBe('/usr/bin/kubectl');
  });

  it('lists the three fake nodes, Ready', async () => {
    const nodes = await kubectlJson<{
      items: { metadata: { name: string }; status: { conditions: { type: string; status: string }[] } }[];
    }>(['get', 'nodes']);
    expect(nodes.items.map((n) => n.metadata.name).sort()).toEqual(['kwok-node-0', 'kwok-node-1', 'kwok-node-2']);
    for (const n of nodes.items) {
      expect(n.status.conditions.find((c) => c.type === 'Ready')?.status, n.metadata.name).toBe('True');
    }
    const table = await kubectlOk(['get', 'nodes', '--no-headers']);
    expect(
      table
        .trim()
        .split('\n')
        .map((l) => l.split(/\s+/).slice(0, 2).join(' '))
        .sort(),
    ).toEqual(['kwok-node-0 Ready', 'kwok-node-1 Ready', 'kwok-node-2 Ready']);
  });

  describe('Deployment', () => {
    const labels = { app: 'web' };

    it('with 3 replicas reaches 3 available', async () => {
      await apply(deployment('web', labels, 3), { namespace: ns.name });
      const status = await kubectl(['-n', ns.name, 'rollout', 'status', 'deployment/web', '--timeout=60s']);
      expect(status.code, status.stderr).toBe(0);
      const d = await kubectlJson<{ status: { availableReplicas?: number; readyReplicas?: number } }>(['-n', ns.name, 'get', 'deployment', 'web']);
      expect(d.status.availableReplicas).toBe(3);
      expect(d.status.readyReplicas).toBe(3);
      const pods = await kubectlJson<{ items: Pod[] }>(['-n', ns.name, 'get', 'pods', '-l', 'app=web']);
      expect(pods.items).toHaveLength(3);
      for (const p of pods.items) {
        expect(p.status.phase).toBe('Running');
        expect(podReady(p)).toBe(true);
        expect(p.status.podIP).toMatch(/^10\.244\.\d+\.\d+$/);
        expect(p.spec.nodeName).toMatch(/^kwok-node-[0-2]$/);
      }
      expect(new Set(pods.items.map((p) => p.status.podIP)).size).toBe(3);
    });

    it('rolls out a new ReplicaSet to Ready on `kubectl set image`', async () => {
      const before = await kubectlJson<{ items: ReplicaSet[] }>(['-n', ns.name, 'get', 'rs', '-l', 'app=web']);
      expect(before.items).toHaveLength(1);
      const oldName = before.items[0]!.metadata.name;

      await kubectlOk(['-n', ns.name, 'set', 'image', 'deployment/web', 'app=registry.example/app:v2']);
      const status = await kubectl(['-n', ns.name, 'rollout', 'status', 'deployment/web', '--timeout=60s']);
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toContain('successfully rolled out');

      const after = await kubectlJson<{ items: ReplicaSet[] }>(['-n', ns.name, 'get', 'rs', '-l', 'app=web']);
      expect(after.items).toHaveLength(2);
      const newRs = after.items.find((rs) => rs.metadata.name !== oldName)!;
      const oldRs = after.items.find((rs) => rs.metadata.name === oldName)!;
      expect(newRs.spec.template.spec.containers[0]!.image).toBe('registry.example/app:v2');
      expect(newRs.status.readyReplicas).toBe(3);
      expect(newRs.status.availableReplicas).toBe(3);
      expect(oldRs.spec.template.spec.containers[0]!.image).toBe('registry.example/app:v1');
      expect(oldRs.spec.replicas).toBe(0);

      // Old pods are gone; the three left run v2 and are Ready.
      const pods = await waitFor(
        async () => {
          const list = await kubectlJson<{ items: Pod[] }>(['-n', ns.name, 'get', 'pods', '-l', 'app=web']);
          return list.items.length === 3 ? list.items : undefined;
        },
        { message: 'old pods to go' },
      );
      expect(pods.map((p) => p.spec.containers[0]!.image)).toEqual(Array(3).fill('registry.example/app:v2'));
      expect(pods.every(podReady)).toBe(true);
    });
  });

  it("follows a Service's selector change with its EndpointSlices", async () => {
    const blue = { app: 'shop', color: 'blue' };
    const green = { app: 'shop', color: 'green' };
    await apply([deployment('shop-blue', blue, 2), deployment('shop-green', green, 3)], { namespace: ns.name });
    for (const d of ['shop-blue', 'shop-green']) {
      const r = await kubectl(['-n', ns.name, 'rollout', 'status', `deployment/${d}`, '--timeout=60s']);
      expect(r.code, r.stderr).toBe(0);
    }
    const blueIPs = await readyPodIPs(ns.name, 'app=shop,color=blue');
    const greenIPs = await readyPodIPs(ns.name, 'app=shop,color=green');
    expect(blueIPs).toHaveLength(2);
    expect(greenIPs).toHaveLength(3);
    expect(blueIPs.filter((ip) => greenIPs.includes(ip))).toEqual([]);

    await apply(
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'shop' },
        spec: { selector: blue, ports: [{ port: 80, targetPort: 8080 }] },
      },
      { namespace: ns.name },
    );
    const first = await waitFor(
      async () => {
        const ips = await readyEndpointIPs(ns.name, 'shop');
        return JSON.stringify(ips) === JSON.stringify(blueIPs) ? ips : undefined;
      },
      { message: 'EndpointSlices = blue pods' },
    ).catch(async () => readyEndpointIPs(ns.name, 'shop'));
    expect(first).toEqual(blueIPs);

    await kubectlOk(['-n', ns.name, 'patch', 'service', 'shop', '-p', JSON.stringify({ spec: { selector: green } })]);
    const second = await waitFor(
      async () => {
        const ips = await readyEndpointIPs(ns.name, 'shop');
        return JSON.stringify(ips) === JSON.stringify(greenIPs) ? ips : undefined;
      },
      { message: 'EndpointSlices = green pods' },
    ).catch(async () => readyEndpointIPs(ns.name, 'shop'));
    expect(second).toEqual(greenIPs);
  });

  describe('MutatingWebhookConfiguration with a url clientConfig', () => {
    interface Seen {
      path: string;
      uid: string;
      operation: string;
      kind: string;
      namespace: string;
      name: string;
      dryRun: boolean;
    }
    const seen: Seen[] = [];
    let tlsErrors = 0;
    let server: Server;
    let url: string;
    let goodCaBundle: string;
    let wrongCaBundle: string;
    let webhookName: string;
    const label = 'kube-bluegreen.test/mutated-by';

    const webhookConfig = (caBundle: string) => ({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: webhookName },
      webhooks: [
        {
          name: 'label-injector.e2e.kube-bluegreen.test',
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          failurePolicy: 'Fail',
          timeoutSeconds: 5,
          clientConfig: { url: `${url}/mutate`, caBundle },
          // Only this test's namespace: a leftover config must not break other tests.
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns.name } },
          rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['configmaps'] }],
        },
      ],
    });

    beforeAll(async () => {
      webhookName = `e2e-label-injector-${ns.name}`;
      const cert = await issueClusterCert({ commonName: 'e2e-webhook', usage: 'server', ipAddresses: ['127.0.0.1'] });
      goodCaBundle = Buffer.from(cert.caPem).toString('base64');
      wrongCaBundle = Buffer.from((await generateCA('not-the-cluster-ca')).certPem).toString('base64');

      server = createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
        let body = '';
        req.setEncoding('utf8').on('data', (d: string) => (body += d));
        req.on('end', () => {
          const review = JSON.parse(body) as {
            request: {
              uid: string;
              operation: string;
              kind: { kind: string };
              namespace: string;
              name: string;
              dryRun?: boolean;
              object: { metadata: { labels?: Record<string, string> } };
            };
          };
          const r = review.request;
          seen.push({
            path: req.url ?? '',
            uid: r.uid,
            operation: r.operation,
            kind: r.kind.kind,
            namespace: r.namespace,
            name: r.name,
            dryRun: r.dryRun ?? false,
          });
          // JSON Patch needs the parent: add the whole labels map when there is none.
          const patch = r.object.metadata.labels
            ? [{ op: 'add', path: `/metadata/labels/${label.replace(/~/g, '~0').replace(/\//g, '~1')}`, value: 'e2e-webhook' }]
            : [{ op: 'add', path: '/metadata/labels', value: { [label]: 'e2e-webhook' } }];
          res.setHeader('content-type', 'application/json');
          res.end(
            JSON.stringify({
              apiVersion: 'admission.k8s.io/v1',
              kind: 'AdmissionReview',
              response: {
                uid: r.uid,
                allowed: true,
                patchType: 'JSONPatch',
                patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
              },
            }),
          );
        });
      });
      server.on('tlsClientError', () => tlsErrors++);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });

    afterAll(async () => {
      if (webhookName) await kubectl(['delete', 'mutatingwebhookconfiguration', webhookName, '--ignore-not-found']);
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    });

    let attempt = 0;
    const createConfigMap = async () => {
      const name = `probe-${++attempt}`;
      const r = await kubectl(['-n', ns.name, 'create', 'configmap', name, '--from-literal=k=v']);
      return { name, ...r };
    };

    it('is called by the apiserver and its JSON patch is applied', async () => {
      await apply(webhookConfig(goodCaBundle));
      // The apiserver picks the configuration up through an informer: create probes until one is mutated.
      const created = await waitFor(
        async () => {
          const r = await createConfigMap();
          expect(r.code, r.stderr).toBe(0);
          return seen.some((s) => s.name === r.name) ? r : undefined;
        },
        { timeoutMs: 30_000, message: 'the webhook to be called' },
      );
      const call = seen.find((s) => s.name === created.name)!;
      expect(call).toMatchObject({
        operation: 'CREATE',
        kind: 'ConfigMap',
        namespace: ns.name,
        name: created.name,
        dryRun: false,
      });
      expect(call.path).toMatch(/^\/mutate(\?|$)/);
      expect(call.uid).toMatch(/^[0-9a-f-]{36}$/);
      const stored = await kubectlJson<{ metadata: { labels?: Record<string, string> }; data: Record<string, string> }>([
        '-n',
        ns.name,
        'get',
        'configmap',
        created.name,
      ]);
      expect(stored.metadata.labels?.[label]).toBe('e2e-webhook');
      expect(stored.data).toEqual({ k: 'v' });
    });

    it('is not called outside the namespaces its namespaceSelector matches', async () => {
      const before = seen.length;
      const r = await kubectl(['-n', 'default', 'create', 'configmap', `not-mutated-${ns.name}`, '--from-literal=k=v']);
      try {
        expect(r.code, r.stderr).toBe(0);
        const stored = await kubectlJson<{ metadata: { labels?: Record<string, string> } }>(['-n', 'default', 'get', 'configmap', `not-mutated-${ns.name}`]);
        expect(stored.metadata.labels?.[label]).toBeUndefined();
        expect(seen.length).toBe(before);
      } finally {
        await kubectl(['-n', 'default', 'delete', 'configmap', `not-mutated-${ns.name}`, '--ignore-not-found']);
      }
    });

    it('fails the request with an x509 error when the caBundle does not match the server', async () => {
      await apply(webhookConfig(wrongCaBundle));
      const before = { tlsErrors };
      const failed = await waitFor(
        async () => {
          const r = await createConfigMap();
          return r.code !== 0 ? r : undefined;
        },
        { timeoutMs: 30_000, message: 'a create to be rejected' },
      );
      expect(failed.stderr).toContain('failed calling webhook "label-injector.e2e.kube-bluegreen.test"');
      expect(failed.stderr).toMatch(/x509: certificate signed by unknown authority/);
      // The handshake reached our server and was refused by the apiserver's verification: no request came through.
      expect(tlsErrors).toBeGreaterThan(before.tlsErrors);
      expect(seen.filter((s) => s.name === failed.name)).toEqual([]);
      const get = await kubectl(['-n', ns.name, 'get', 'configmap', failed.name]);
      expect(get.code).not.toBe(0);
      expect(get.stderr).toContain('NotFound');

      // Putting the right caBundle back makes it work again: the failure was the CA, not the server.
      await apply(webhookConfig(goodCaBundle));
      const ok = await waitFor(
        async () => {
          const r = await createConfigMap();
          return r.code === 0 ? r : undefined;
        },
        { timeoutMs: 30_000, message: 'creates to succeed again' },
      );
      expect(seen.some((s) => s.name === ok.name)).toBe(true);
    });
  });
});
