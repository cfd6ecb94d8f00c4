// fetchApp's two reads: LISTs by label, or (byName, for switch and rollback) the members found in
// the API server's cache and each one read fresh; "not enrolled" only ever from the LISTs.
import { describe, expect, it } from 'vitest';
import type { Deployment, Service } from '../../../src/core/k8s-types.ts';
import { fetchApp } from '../../../plugin/src/app-objects.ts';
import { FakeCluster } from './fake-cluster.ts';
import { seedShop } from './harness.ts';

class ByName extends FakeCluster {
  readonly reads: string[] = [];
  /** What the API server's cache would return (possibly behind). */
  cached: { deployments: Deployment[]; services: Service[] } | undefined;
  async readAppByName(ns: string, app: string) {
    this.reads.push(`byName ${ns}/${app}`);
    return this.cached ?? { deployments: [], services: [] };
  }
  override async listDeployments(ns: string | undefined, sel?: string) {
    this.reads.push(`list deployments ${sel}`);
    return super.listDeployments(ns, sel);
  }
}

describe('fetchApp', () => {
  it('byName: the objects the by-name read returns, no LIST', async () => {
    const c = new ByName();
    seedShop(c);
    const all = await fetchApp(c, 'default', 'shop');
    c.reads.length = 0;
    c.cached = { deployments: [...all!.deployments], services: [...all!.services] };
    const got = await fetchApp(c, 'default', 'shop', { byName: true });
    expect(c.reads).toEqual(['byName default/shop']);
    expect(got?.deployments.map((d) => d.metadata.name)).toEqual(all!.deployments.map((d) => d.metadata.name));
  });

  it('byName finding nothing (a cache behind a fresh enrolment) asks the LISTs before saying "not enrolled"', async () => {
    const c = new ByName();
    seedShop(c);
    const got = await fetchApp(c, 'default', 'shop', { byName: true });
    expect(c.reads).toEqual(['byName default/shop', 'list deployments bluegreen.io/app=shop']);
    expect(got?.deployments.length).toBeGreaterThan(0);
  });

  it('without byName, or on a cluster without the by-name read: LISTs', async () => {
    const c = new ByName();
    seedShop(c);
    await fetchApp(c, 'default', 'shop');
    expect(c.reads).toEqual(['list deployments bluegreen.io/app=shop']);
    const plain = new FakeCluster();
    seedShop(plain);
    expect((await fetchApp(plain, 'default', 'shop', { byName: true }))?.services.length).toBeGreaterThan(0);
  });
});
