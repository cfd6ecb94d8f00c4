// The Cluster interface over the raw JSON client (src/kube/client.ts).
import type { Deployment, HorizontalPodAutoscaler, ObjectMeta, Service } from '../../src/core/k8s-types.ts';
import { APP_LABEL } from '../../src/core/labels.ts';
import { type KubeClient, type PatchType, paths } from '../../src/kube/client.ts';
import { type Cluster, type EndpointSlice, isNotFound, type Pod, type WriteOptions } from './cluster.ts';

const dry = (o?: WriteOptions) => (o?.dryRun ? { dryRun: 'All' } : undefined);

export class KubeCluster implements Cluster {
  readonly client: KubeClient;
  readonly defaultNamespace: string;
  constructor(client: KubeClient) {
    this.client = client;
    this.defaultNamespace = client.defaultNamespace;
  }
  async listDeployments(ns: string | undefined, labelSelector?: string): Promise<Deployment[]> {
    return (await this.client.list<Deployment>(paths.deployments(ns), { labelSelector })).items;
  }
  async listServices(ns: string | undefined, labelSelector?: string): Promise<Service[]> {
    return (await this.client.list<Service>(paths.services(ns), { labelSelector })).items;
  }
  getDeployment(ns: string, name: string): Promise<Deployment | undefined> {
    return orUndefined(this.client.get<Deployment>(paths.deployments(ns, name)));
  }
  getService(ns: string, name: string): Promise<Service | undefined> {
    return orUndefined(this.client.get<Service>(paths.services(ns, name)));
  }
  createDeployment(ns: string, body: Deployment, opts?: WriteOptions): Promise<Deployment> {
    return this.client.create<Deployment>(paths.deployments(ns), body, dry(opts));
  }
  patchDeployment(ns: string, name: string, patch: unknown, type: PatchType, opts?: WriteOptions): Promise<Deployment> {
    return this.client.patch<Deployment>(paths.deployments(ns, name), patch, type, dry(opts));
  }
  patchService(ns: string, name: string, patch: unknown, type: PatchType, opts?: WriteOptions): Promise<Service> {
    return this.client.patch<Service>(paths.services(ns, name), patch, type, dry(opts));
  }
  async deleteDeployment(ns: string, name: string, opts?: WriteOptions): Promise<void> {
    await this.client.delete(paths.deployments(ns, name), { propagationPolicy: 'Background', ...dry(opts) });
  }
  async listPods(ns: string, labelSelector: string): Promise<Pod[]> {
    return (await this.client.list<Pod>(paths.pods(ns), { labelSelector })).items;
  }
  async listEndpointSlices(ns: string, labelSelector: string): Promise<EndpointSlice[]> {
    return (await this.client.list<EndpointSlice>(paths.endpointSlices(ns), { labelSelector })).items;
  }
  async listHpas(ns: string | undefined, labelSelector: string): Promise<HorizontalPodAutoscaler[]> {
    return (await this.client.list<HorizontalPodAutoscaler>(paths.horizontalPodAutoscalers(ns), { labelSelector })).items;
  }
  async listNamespaces(): Promise<string[]> {
    return (await this.client.list<{ metadata: ObjectMeta }>('/api/v1/namespaces')).items.map((n) => n.metadata.name ?? '');
  }
  async readAppByName(ns: string, app: string): Promise<{ deployments: Deployment[]; services: Service[] }> {
    const query = { labelSelector: `${APP_LABEL}=${app}`, resourceVersion: '0' };
    const [d, s] = await Promise.all([this.client.list<Deployment>(paths.deployments(ns), query), this.client.list<Service>(paths.services(ns), query)]);
    const fresh = <T extends Deployment | Service>(items: T[], path: (name: string) => string) =>
      Promise.all(items.map((x) => orUndefined(this.client.get<T>(path(x.metadata.name ?? ''))))).then((xs) =>
        xs.filter((x): x is Awaited<T> & T => x?.metadata.labels?.[APP_LABEL] === app),
      );
    const [deployments, services] = await Promise.all([fresh(d.items, (n) => paths.deployments(ns, n)), fresh(s.items, (n) => paths.services(ns, n))]);
    return { deployments, services };
  }
  async whoAmI(): Promise<string | undefined> {
    try {
      const r = await this.client.create<{ status?: { userInfo?: { username?: string } } }>(paths.selfSubjectReviews(), {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'SelfSubjectReview',
      });
      return r.status?.userInfo?.username || undefined;
    } catch {
      return undefined;
    }
  }
  close(): void {
    this.client.close();
  }
}

async function orUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}
