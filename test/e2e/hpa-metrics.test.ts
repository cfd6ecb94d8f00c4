// The local control plane's resource metrics, end to end: kwok emulates each node's kubelet
// /metrics/resource (usage from pod annotations), metrics-server scrapes it and serves
// metrics.k8s.io through the apiserver's aggregation layer, and the real HPA controller of
// kube-controller-manager (synced every 2 s here) scales a Deployment on them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apply, clusterEnv, createNamespace, kubectl, kubectlJson, kubectlOk, waitFor, type TestNamespace } from './helpers/cluster.ts';
import { kwokPodMetadata, milliCpu, podMetrics, setPodUsage } from './helpers/kwok.ts';

interface Hpa {
  spec: { minReplicas?: number; maxReplicas: number };
  status: {
    currentReplicas?: number;
    desiredReplicas?: number;
    currentMetrics?: { type: string; resource?: { name: string; current: { averageUtilization?: number; averageValue?: string } } }[];
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}
interface Deployment {
  spec: { replicas: number };
  status: { replicas?: number; readyReplicas?: number; updatedReplicas?: number };
}

const REQUEST_CPU = '100m';

function web(cpu: string) {
  const meta = kwokPodMetadata({ cpu, memory: '40Mi' });
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web' },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' }, annotations: meta.annotations },
        spec: {
          containers: [{ name: 'app', image: 'registry.example/web:v1', resources: { requests: { cpu: REQUEST_CPU, memory: '64Mi' } } }],
        },
      },
    },
  };
}

const hpa = {
  apiVersion: 'autoscaling/v2',
  kind: 'HorizontalPodAutoscaler',
  metadata: { name: 'web' },
  spec: {
    scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' },
    minReplicas: 1,
    maxReplicas: 4,
    metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } }],
    behavior: {
      scaleUp: { stabilizationWindowSeconds: 0 },
      scaleDown: { stabilizationWindowSeconds: 5, policies: [{ type: 'Percent', value: 100, periodSeconds: 5 }] },
    },
  },
};

const utilization = (h: Hpa) => h.status.currentMetrics?.find((m) => m.resource?.name === 'cpu')?.resource?.current.averageUtilization;

let ns: TestNamespace;

beforeAll(async () => {
  ns = await createNamespace('e2e-hpa-metrics');
  await apply(web('20m'), { namespace: ns.name });
  await kubectlOk(['-n', ns.name, 'rollout', 'status', 'deployment/web', '--timeout=60s'], { timeoutMs: 70_000 });
});

afterAll(async () => {
  await ns?.cleanup();
});

describe('resource metrics (kwok + metrics-server)', () => {
  it('metrics.k8s.io is an available aggregated API, served by the metrics-server the cluster runs', async () => {
    const svc = await kubectlJson<{ spec: { service: { name: string; namespace: string } }; status: { conditions: { type: string; status: string }[] } }>([
      'get',
      'apiservice',
      'v1beta1.metrics.k8s.io',
    ]);
    expect(svc.spec.service).toMatchObject({ name: 'metrics-server', namespace: 'kube-system' });
    expect(svc.status.conditions).toContainEqual(expect.objectContaining({ type: 'Available', status: 'True' }));
    expect(clusterEnv().metricsServer).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it('kubectl top pods shows the usage the pod annotations emulate; kubectl top nodes shows the node it runs on', async () => {
    const line = await waitFor(
      async () => {
        const r = await kubectl(['-n', ns.name, 'top', 'pods', '--no-headers']);
        return r.code === 0 ? r.stdout.split('\n').find((l) => l.startsWith('web-')) : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1_000, message: 'kubectl top pods lists the web pod' },
    );
    const [, cpu, memory] = line.trim().split(/\s+/);
    expect(milliCpu(cpu!)).toBeGreaterThanOrEqual(15);
    expect(milliCpu(cpu!)).toBeLessThanOrEqual(25);
    expect(memory).toBe('40Mi');

    const [m] = await podMetrics(ns.name, 'app=web');
    expect(m!.containers).toEqual([{ name: 'app', usage: expect.objectContaining({ memory: '40Mi' }) }]);

    // A node's usage is the sum of its pods' (metrics-server drops a node that reports 0): the
    // web pod's node is listed, with at least the pod's usage.
    const node = (await kubectlJson<{ items: { spec: { nodeName: string } }[] }>(['-n', ns.name, 'get', 'pods', '-l', 'app=web'])).items[0]!.spec.nodeName;
    const nodeLine = await waitFor(async () => (await kubectlOk(['top', 'nodes', '--no-headers'])).split('\n').find((l) => l.startsWith(`${node} `)), {
      timeoutMs: 30_000,
      intervalMs: 1_000,
      message: `kubectl top nodes lists ${node}`,
    });
    expect(clusterEnv().nodes).toContain(node);
    expect(milliCpu(nodeLine.trim().split(/\s+/)[1]!)).toBeGreaterThanOrEqual(15);
  });
});

describe('HorizontalPodAutoscaler (autoscaling/v2, CPU utilization) with the real HPA controller', () => {
  it('reads the current utilization and keeps the Deployment at its minimum while usage is low', async () => {
    await apply(hpa, { namespace: ns.name });
    const h = await waitFor(
      async () => {
        const h = await kubectlJson<Hpa>(['-n', ns.name, 'get', 'hpa', 'web']);
        return utilization(h) !== undefined ? h : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1_000, message: 'the HPA reports a current CPU utilization' },
    );
    // 20m used of 100m requested
    expect(utilization(h)).toBeGreaterThanOrEqual(15);
    expect(utilization(h)).toBeLessThanOrEqual(25);
    expect(h.status.desiredReplicas).toBe(1);
    expect(h.status.conditions).toContainEqual(expect.objectContaining({ type: 'ScalingActive', status: 'True' }));
  }, 90_000);

  it('scales up to maxReplicas when the usage is high (300% of the request), and shows it in status', async () => {
    // The template's usage: the new pods (and the ones the HPA adds) use 300m each.
    await apply(web('300m'), { namespace: ns.name });
    const h = await waitFor(
      async () => {
        const [h, d] = await Promise.all([
          kubectlJson<Hpa>(['-n', ns.name, 'get', 'hpa', 'web']),
          kubectlJson<Deployment>(['-n', ns.name, 'get', 'deployment', 'web']),
        ]);
        return d.spec.replicas === 4 && d.status.readyReplicas === 4 && d.status.updatedReplicas === 4 ? h : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1_000, message: 'the HPA scaled web to 4 ready replicas' },
    );
    expect(h.status.desiredReplicas).toBe(4);
    expect(utilization(h)).toBeGreaterThan(50);
    expect(h.status.conditions).toContainEqual(expect.objectContaining({ type: 'ScalingLimited', status: 'True', reason: 'TooManyReplicas' }));
  }, 150_000);

  it('scales back down to minReplicas when the usage drops, after the short stabilization window', async () => {
    // Every running pod now uses 10m (10% of its request): the HPA wants ceil(4 × 10 / 50) = 1.
    await setPodUsage(ns.name, 'app=web', { cpu: '10m' });
    const seen = new Set<number>();
    const h = await waitFor(
      async () => {
        const [h, d] = await Promise.all([
          kubectlJson<Hpa>(['-n', ns.name, 'get', 'hpa', 'web']),
          kubectlJson<Deployment>(['-n', ns.name, 'get', 'deployment', 'web']),
        ]);
        seen.add(d.spec.replicas);
        return d.spec.replicas === 1 && (utilization(h) ?? 100) < 50 ? h : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1_000, message: 'the HPA scaled web down to 1' },
    );
    expect(h.status.desiredReplicas).toBe(1);
    expect(Math.max(...seen)).toBeLessThanOrEqual(4); // never above the maximum on the way down
    const d = await kubectlJson<Deployment>(['-n', ns.name, 'get', 'deployment', 'web']);
    expect(d.spec.replicas).toBe(1);
  }, 150_000);
});
