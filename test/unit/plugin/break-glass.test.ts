// kubectl bg rollback/switch --break-glass against the fake cluster: who the requests go as (the
// caller's own user name from a SelfSubjectReview, impersonated with the break-glass group and
// system:authenticated), that every read and write goes through that identity, what is still
// checked, the loud warning, and the history record.
import { describe, expect, it } from 'vitest';
import type { Deployment, Service } from '../../../src/core/k8s-types.ts';
import { parseHistory } from '../../../src/core/history.ts';
import { BREAK_GLASS_GROUP, HISTORY_ANNOTATION, LIVE_LABEL, SCALE_DOWN_AT_ANNOTATION } from '../../../src/core/labels.ts';
import { templateHash } from '../../../src/core/template.ts';
import type { Cluster } from '../../../plugin/src/cluster.ts';
import type { ConnectOptions } from '../../../plugin/src/context.ts';
import { apiError, FakeCluster } from './fake-cluster.ts';
import { dep, harness, seedShop, svc } from './harness.ts';

const GROUPS = [BREAK_GLASS_GROUP, 'system:authenticated'];

/** A harness whose every connection is told apart: which connection each Cluster call came through. */
function tracked(cluster: FakeCluster) {
  const h = harness({ cluster });
  const connects: ConnectOptions[] = [];
  const calls: { conn: number; method: string }[] = [];
  h.ctx.connect = async (c) => {
    connects.push(c);
    const conn = connects.length;
    return new Proxy(cluster, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => {
          calls.push({ conn, method: String(prop) });
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    }) as Cluster;
  };
  return { h, connects, calls };
}

/** green live after a switch from blue; blue warm. */
function afterSwitch(o: { user?: string; blueReady?: number } = {}) {
  const c = new FakeCluster({ ...(o.user !== undefined ? { user: o.user } : { user: 'alice' }) });
  const blue = dep('shop-blue', { colour: 'blue', live: false, ...(o.blueReady !== undefined ? { ready: o.blueReady } : {}) });
  const green = dep('shop-green', { colour: 'green', live: true, image: 'registry.example/shop:v2' });
  const record = {
    kind: 'switch',
    from: 'blue',
    to: 'green',
    at: '2026-01-01T11:00:00.000Z',
    fromTemplate: templateHash(blue.spec!.template, 'slot'),
    toTemplate: templateHash(green.spec!.template, 'slot'),
  };
  if (o.blueReady !== undefined) c.stuck.add('shop-blue');
  c.put('deployments', blue);
  c.put('deployments', green);
  c.put(
    'services',
    svc('shop', {
      selector: { app: 'shop', slot: 'green' },
      annotations: { [HISTORY_ANNOTATION]: JSON.stringify([record]), [SCALE_DOWN_AT_ANNOTATION]: '2026-01-01T11:10:00.000Z' },
    }),
  );
  c.tick();
  return c;
}
const live = (c: FakeCluster, name: string) => c.peek<Deployment>('deployments', name)!.metadata.labels?.[LIVE_LABEL];
const service = (c: FakeCluster) => c.peek<Service>('services', 'shop')!;
const lastRecord = (c: FakeCluster) => parseHistory(service(c).metadata.annotations?.[HISTORY_ANNOTATION]).records.at(-1);

describe('kubectl bg rollback --break-glass', () => {
  it('asks who you are, then sends everything as you in the break-glass group and system:authenticated', async () => {
    const c = afterSwitch();
    const { h, connects, calls } = tracked(c);
    const r = await h.run('rollback', 'shop', '--break-glass', '--context', 'prod');
    expect(r.code, r.err).toBe(0);
    expect(connects).toEqual([{ context: 'prod' }, { context: 'prod', impersonate: { user: 'alice', groups: GROUPS } }]);
    // The first connection only asks who you are, and is closed before the second opens.
    expect(calls.filter((x) => x.conn === 1).map((x) => x.method)).toEqual(['whoAmI', 'close']);
    const second = calls.filter((x) => x.conn === 2).map((x) => x.method);
    expect(second).toContain('patchService');
    expect(second).toContain('patchDeployment');
    expect(second.at(-1)).toBe('close');
    // Done as a rollback: traffic, preview-less app, live labels (the reconciler that would fix them is down).
    expect(service(c).spec?.selector).toEqual({ app: 'shop', slot: 'blue' });
    expect(live(c, 'shop-blue')).toBe('true');
    expect(live(c, 'shop-green')).toBe('false');
    expect(lastRecord(c)).toMatchObject({ kind: 'rollback', from: 'green', to: 'blue', by: 'alice', breakGlass: true });
    expect(lastRecord(c)?.forced).toBeUndefined();
    expect(r.out).toContain('history: + rollback green -> blue by alice (break-glass)');
  });

  it('warns loudly on stderr: what is skipped, what still holds, and to remove the binding', async () => {
    const { h } = tracked(afterSwitch());
    const r = await h.run('rollback', 'shop', '--break-glass');
    expect(r.err).toContain(`WARNING: BREAK-GLASS rollback: acting as alice in group ${BREAK_GLASS_GROUP}, which every kube-bluegreen webhook skips.`);
    expect(r.err).toContain('still enforced: the cluster policy (slot labels; no pod-template change to the live colour) and RBAC');
    expect(r.err).toContain("NOT checked: the webhook's readiness gate on the switch");
    expect(r.err).toContain('Remove the break-glass binding once the webhook answers again');
    expect(r.err).toContain('WARNING: BREAK-GLASS: rollback recorded as break-glass by alice.');
  });

  it('history and status show the record as break-glass', async () => {
    const { h } = tracked(afterSwitch());
    await h.run('rollback', 'shop', '--break-glass');
    const hist = await h.run('history', 'shop');
    expect(hist.out).toMatch(/^2\s+rollback \(break-glass\)\s+green\s+blue\s+\S+\s+alice\s/m);
    const st = await h.run('status', 'shop');
    expect(st.out).toMatch(/Last switch: rollback green -> blue, .* by alice \(break-glass\)/);
  });

  it('--break-glass-group names another group; alone it is a usage error', async () => {
    const { h, connects } = tracked(afterSwitch());
    expect((await h.run('rollback', 'shop', '--break-glass', '--break-glass-group', 'ops:emergency')).code).toBe(0);
    expect(connects.at(-1)).toEqual({ impersonate: { user: 'alice', groups: ['ops:emergency', 'system:authenticated'] } });
    const n = connects.length;
    const r = await h.run('rollback', 'shop', '--break-glass-group', 'ops:emergency');
    expect(r.code).toBe(64);
    expect(r.err).toContain('--break-glass-group goes with --break-glass');
    expect((await h.run('rollback', 'shop', '--break-glass', '--break-glass-group', ' ')).code).toBe(64);
    expect(connects.length).toBe(n);
  });

  it('without a user name from the API server there is nobody to act as: exit 1, nothing written', async () => {
    const c = afterSwitch({ user: '' });
    c.user = undefined;
    const { h, connects } = tracked(c);
    const r = await h.run('rollback', 'shop', '--break-glass');
    expect(r.code).toBe(1);
    expect(r.err).toContain('break-glass: the API server did not say who you are (SelfSubjectReview)');
    expect(connects).toHaveLength(1);
    expect(c.realWrites()).toEqual([]);
  });

  it("the command's own readiness check still applies: refused (exit 2) unless --force, which is recorded too", async () => {
    const c = afterSwitch({ blueReady: 1 });
    const { h } = tracked(c);
    const r = await h.run('rollback', 'shop', '--break-glass');
    expect(r.code).toBe(2);
    expect(r.err).toContain('cannot rollback shop to blue');
    expect(c.realWrites()).toEqual([]);
    const f = await h.run('rollback', 'shop', '--break-glass', '--force');
    expect(f.code, f.err).toBe(0);
    expect(lastRecord(c)).toMatchObject({ kind: 'rollback', to: 'blue', forced: true, breakGlass: true });
    expect(f.out).toContain('(forced) (break-glass)');
  });

  it('a refused impersonation says which binding is missing', async () => {
    const c = afterSwitch();
    c.admit = () => {
      throw apiError(403, 'Forbidden', 'users "alice" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope');
    };
    const { h } = tracked(c);
    const r = await h.run('rollback', 'shop', '--break-glass');
    expect(r.code).toBe(1);
    expect(r.err).toContain(`break-glass: you may not act as alice in group ${BREAK_GLASS_GROUP}: users "alice" is forbidden`);
    expect(r.err).toContain('hint: an admin binds the ClusterRole <release>-break-glass to you, and impersonate on your own user name');
  });

  it('if the live label cannot be moved, exit 1 with the command that does it: the policy protects the colour labelled live', async () => {
    const c = afterSwitch();
    c.inject({ op: 'patch', kind: 'deployments', name: 'shop-blue', error: () => apiError(500, 'InternalError', 'etcd hiccup') });
    const { h } = tracked(c);
    const r = await h.run('rollback', 'shop', '--break-glass');
    expect(r.code).toBe(1);
    expect(service(c).spec?.selector).toEqual({ app: 'shop', slot: 'blue' });
    expect(r.err).toContain('traffic moved to blue, but Deployment shop-blue is not labelled bluegreen.io/live=true');
    expect(r.err).toContain(
      `kubectl label deployment shop-blue bluegreen.io/live=true --overwrite --as=alice --as-group=${BREAK_GLASS_GROUP} --as-group=system:authenticated`,
    );
  });

  it('--dry-run asks the API server as the break-glass identity and says only the policy looked', async () => {
    const c = afterSwitch();
    const { h } = tracked(c);
    const r = await h.run('rollback', 'shop', '--break-glass', '--dry-run');
    expect(r.code).toBe(0);
    expect(r.out).toContain('server dry run: accepted by the API server and the cluster policy (the webhooks skip the break-glass group); nothing was changed');
    expect(c.realWrites()).toEqual([]);
  });

  it('a change pending for the target is not waited for: the reconciler that lands it is down', async () => {
    const c = new FakeCluster({ user: 'alice' });
    const record = JSON.stringify({
      v: 1,
      template: { spec: { containers: [{ name: 'app', image: 'registry.example/shop:v3' }] } },
      hash: 'h',
      bases: {},
      from: 'blue',
      to: 'green',
      minReplicas: 3,
      summary: 'image change',
      by: 'bob',
      request: 'req-9',
      at: '2026-01-01T11:59:58.000Z',
      deployment: 'u',
      base: '1',
      sig: 's',
    });
    seedShop(c, { blue: { annotations: { 'bluegreen.io/pending-change': record } } });
    const { h } = tracked(c);
    const r = await h.run('switch', 'shop', '--break-glass', '--wait');
    expect(r.code).toBe(2);
    expect(r.err).toContain("the webhook's reconciler, which applies it, is not running (break-glass)");
    expect(r.err).toContain("'kubectl bg switch shop --break-glass --force'");
    expect(h.sleeps).toBe(0);
  });

  it('switch --break-glass works the same way', async () => {
    const c = new FakeCluster({ user: 'alice' });
    seedShop(c, { preview: true });
    const { h, connects } = tracked(c);
    const r = await h.run('switch', 'shop', '--break-glass');
    expect(r.code, r.err).toBe(0);
    expect(connects.at(-1)).toEqual({ impersonate: { user: 'alice', groups: GROUPS } });
    expect(lastRecord(c)).toMatchObject({ kind: 'switch', from: 'blue', to: 'green', breakGlass: true });
  });

  it('without --break-glass nothing changes: one connection, no impersonation, no mark', async () => {
    const c = afterSwitch();
    const { h, connects } = tracked(c);
    const r = await h.run('rollback', 'shop');
    expect(r.code).toBe(0);
    expect(connects).toEqual([{}]);
    expect(r.err).not.toContain('BREAK-GLASS');
    expect(lastRecord(c)?.breakGlass).toBeUndefined();
  });
});
