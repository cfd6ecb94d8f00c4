// The cluster side shared by sections 3 and 4: the local control plane
// (local-cluster/control-plane.ts up(): reuses a running one), a namespace of
// our own with the apps the sections use, and the real webhook process
// registered for that namespace only (test/e2e/helpers/webhook.ts).
import { randomBytes } from 'node:crypto';
import { type ClusterEnv, up } from '../../local-cluster/control-plane.ts';
import { type RunningWebhook, startWebhook } from '../../test/e2e/helpers/webhook.ts';
import { sampleApp } from '../../test/fixtures/sample-app.ts';
import type { Deployment } from '../../src/core/k8s-types.ts';
import { SCALE_DOWN_DELAY_ANNOTATION } from '../../src/core/labels.ts';
import { KubeClient, paths } from '../../src/kube/client.ts';
import { progress } from '../lib/context.ts';

export const IMAGE = 'registry.example/shop:v1';

export interface ClusterBench {
  env: ClusterEnv;
  /** The cluster was running before this benchmark. */
  reused: boolean;
  client: KubeClient;
  namespace: string;
  webhook: RunningWebhook;
  /** Other webhook configurations that match our namespace (see otherWebhooks()). */
  otherWebhooks: string[];
}

/** Section 3: an enrolled app and a plain Deployment. */
export const PATCH_APPS = { enrolled: 'shop', plain: 'plain', floor: 'floor' };
/** The label that sends a Deployment to the floor webhook of section 3 (an allow-only server). */
export const FLOOR_LABEL = 'kube-bluegreen.bench/floor-webhook';
/** Section 4: an enrolled app switched by the plugin, and a plain blue/green pair switched by a bare selector patch. */
export const SWITCH_APPS = { enrolled: 'web', plain: 'flip' };

let shared: Promise<ClusterBench> | undefined;
const made: { client?: KubeClient; namespace?: string; webhook?: RunningWebhook; reused?: boolean } = {};

export function clusterBench(): Promise<ClusterBench> {
  shared ??= setUp();
  return shared;
}

function plainDeployment(namespace: string, name: string, labels: Record<string, string>, replicas = 2) {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: { containers: [{ name: 'app', image: IMAGE, ports: [{ containerPort: 8080 }], env: [{ name: 'GREETING', value: 'hello' }] }] },
      },
    },
  };
}

function objects(ns: string): { kind: string; metadata: { name: string; annotations?: Record<string, string> } }[] {
  const web = sampleApp({ namespace: ns, app: SWITCH_APPS.enrolled }) as { kind: string; metadata: { name: string; annotations?: Record<string, string> } }[];
  // The old colour stays up for the whole benchmark: no scale-down between switches.
  for (const o of web) if (o.kind === 'Service') o.metadata.annotations = { ...o.metadata.annotations, [SCALE_DOWN_DELAY_ANNOTATION]: '2h' };
  const flip = SWITCH_APPS.plain;
  return [
    ...(sampleApp({ namespace: ns, app: PATCH_APPS.enrolled }) as { kind: string; metadata: { name: string } }[]),
    plainDeployment(ns, PATCH_APPS.plain, { app: PATCH_APPS.plain }),
    plainDeployment(ns, PATCH_APPS.floor, { app: PATCH_APPS.floor, [FLOOR_LABEL]: 'true' }),
    ...web,
    plainDeployment(ns, `${flip}-blue`, { app: flip, slot: 'blue' }),
    plainDeployment(ns, `${flip}-green`, { app: flip, slot: 'green' }),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: flip, namespace: ns },
      spec: { selector: { app: flip, slot: 'blue' }, ports: [{ port: 80, targetPort: 8080 }] },
    } as { kind: string; metadata: { name: string } },
  ];
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (${last})` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function waitAvailable(client: KubeClient, ns: string): Promise<void> {
  await until(`the Deployments in ${ns} to be available`, async () => {
    const l = await client.list<
      Deployment & { status?: { availableReplicas?: number; updatedReplicas?: number; readyReplicas?: number; observedGeneration?: number } }
    >(paths.deployments(ns));
    const ok = l.items.every(
      (d) =>
        (d.status?.observedGeneration ?? 0) >= (d.metadata.generation ?? 0) &&
        (d.status?.availableReplicas ?? 0) === (d.spec?.replicas ?? 1) &&
        (d.status?.updatedReplicas ?? 0) === (d.spec?.replicas ?? 1),
    );
    return ok && l.items.length ? true : undefined;
  });
}

async function setUp(): Promise<ClusterBench> {
  const t0 = performance.now();
  const { env, reused } = await up({ log: (m) => progress(`cluster: ${m}`) });
  made.reused = reused;
  const client = KubeClient.connect({ kubeconfig: env.kubeconfig, timeoutMs: 30_000 });
  made.client = client;
  const ns = `kbg-bench-${randomBytes(3).toString('hex')}`;
  await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { 'kube-bluegreen.bench': 'true' } } });
  made.namespace = ns;
  await until(`ServiceAccount ${ns}/default`, () => client.get(`/api/v1/namespaces/${ns}/serviceaccounts/default`));
  // Deployments first: a webhook already registered for every namespace (another run's) refuses an
  // active Service whose colour has no ready pods yet.
  const objs = objects(ns);
  for (const o of objs.filter((x) => x.kind === 'Deployment')) await client.create(paths.deployments(ns), o);
  await waitAvailable(client, ns);
  for (const o of objs.filter((x) => x.kind === 'Service')) await client.create(paths.services(ns), o);
  const webhook = await startWebhook({ namespace: ns });
  made.webhook = webhook;
  const others = await otherWebhooks(client, ns, webhook.configName);
  progress(`cluster: namespace ${ns} with apps and the webhook (pid ${webhook.pid()}) ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { env, reused, client, namespace: ns, webhook, otherWebhooks: others };
}

interface WebhookConfig {
  metadata: { name: string };
  webhooks?: {
    name: string;
    clientConfig?: { url?: string; service?: { namespace?: string; name?: string } };
    namespaceSelector?: { matchLabels?: Record<string, string> };
  }[];
}

/**
 * Webhook configurations other than ours whose namespaceSelector takes in our
 * namespace (another test run's or a demo's webhook registered for every
 * namespace): the apiserver calls them too, so they are part of what is measured.
 */
export async function otherWebhooks(client: KubeClient, ns: string, mine: string): Promise<string[]> {
  const found: string[] = [];
  for (const kind of ['mutating', 'validating'] as const) {
    const path = kind === 'mutating' ? paths.mutatingWebhookConfigurations() : paths.validatingWebhookConfigurations();
    const l = await client.list<WebhookConfig>(path);
    for (const cfgObj of l.items) {
      if (cfgObj.metadata.name === mine) continue;
      for (const w of cfgObj.webhooks ?? []) {
        const ml = w.namespaceSelector?.matchLabels ?? {};
        const matches = Object.entries(ml).every(([k, v]) => (k === 'kubernetes.io/metadata.name' ? v === ns : k === 'kube-bluegreen.bench' && v === 'true'));
        if (!matches) continue;
        const to = w.clientConfig?.url ?? `service ${w.clientConfig?.service?.namespace}/${w.clientConfig?.service?.name}`;
        found.push(`${kind} ${cfgObj.metadata.name}/${w.name} -> ${to}`);
      }
    }
  }
  return found;
}

/** Looks again (others start and stop webhooks during a run) and keeps every one seen. */
export async function refreshOtherWebhooks(c: ClusterBench): Promise<void> {
  const now = await otherWebhooks(c.client, c.namespace, c.webhook.configName).catch(() => []);
  for (const w of now) if (!c.otherWebhooks.includes(w)) c.otherWebhooks.push(w);
}

/** A note for the report when other webhooks took part. */
export function otherWebhooksNote(c: ClusterBench): string {
  return c.otherWebhooks.length
    ? `  note: other webhook configurations registered for every namespace also took part (the apiserver called them too):\n    ${c.otherWebhooks.join('\n    ')}`
    : '  No other webhook configuration matched the namespace.';
}

/** Stops the webhook and deletes the namespace this benchmark made; leaves the cluster as it was (running). */
export async function closeClusterBench(): Promise<void> {
  if (!shared) return;
  await shared.catch(() => undefined);
  if (made.webhook) await made.webhook.stop().catch((e: Error) => progress(`cluster: stopping the webhook: ${e.message}`));
  if (made.client && made.namespace)
    await made.client.delete(`/api/v1/namespaces/${made.namespace}`).catch((e: Error) => progress(`cluster: deleting ${made.namespace}: ${e.message}`));
  made.client?.close();
  if (made.reused === false) progress('cluster: the local control plane was started by this benchmark and is left running (npm run cluster:down stops it)');
}
