// kubectl bg history and abort.
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import type { Deployment } from '../../../src/core/k8s-types.ts';
import { HISTORY_ANNOTATION } from '../../../src/core/labels.ts';
import { templateHash } from '../../../src/core/template.ts';
import { FakeCluster, webhookDenial } from './fake-cluster.ts';
import { dep, harness, seedShop, svc } from './harness.ts';

const records = [
  {
    kind: 'switch',
    from: 'blue',
    to: 'green',
    at: '2026-01-01T10:00:00.000Z',
    by: 'alice',
    images: ['app=reg/shop:v2'],
    fromTemplate: 'aaaaaaaaaaaa',
    toTemplate: 'bbbbbbbbbbbb',
  },
  { kind: 'rollback', from: 'green', to: 'blue', at: '2026-01-01T11:30:00.000Z', images: ['app=reg/shop:v1'] },
  {
    kind: 'switch',
    from: 'blue',
    to: 'green',
    at: '2026-01-01T11:58:00.000Z',
    by: 'system:serviceaccount:ci:deployer',
    images: ['app=reg/shop:v3', 'init:db=reg/db:1'],
    forced: true,
  },
];

function withHistory(h: unknown[] | string | null = records) {
  const x = harness();
  seedShop(x.cluster, { service: { annotations: h === null ? {} : { [HISTORY_ANNOTATION]: typeof h === 'string' ? h : JSON.stringify(h) } } });
  return x;
}

describe('history', () => {
  it('lists the switches, oldest first', async () => {
    expect(await withHistory().run('history', 'shop')).toEqual({
      code: 0,
      out: `#   KIND              FROM    TO      AGE    BY                                  IMAGES
1   switch            blue    green   120m   alice                               app=reg/shop:v2
2   rollback          green   blue    30m    <unknown>                           app=reg/shop:v1
3   switch (forced)   blue    green   2m     system:serviceaccount:ci:deployer   app=reg/shop:v3 init:db=reg/db:1
`,
      err: '',
    });
  });

  it('-o wide adds the time and the template fingerprints', async () => {
    const r = await withHistory(records.slice(0, 1)).run('history', 'shop', '-o', 'wide');
    expect(r.out).toBe(`#   KIND     FROM   TO      AGE    BY      IMAGES            AT                         FROM TEMPLATE   TO TEMPLATE
1   switch   blue   green   120m   alice   app=reg/shop:v2   2026-01-01T10:00:00.000Z   aaaaaaaaaaaa    bbbbbbbbbbbb
`);
  });

  it.each([
    ['json', (s: string) => JSON.parse(s)],
    ['yaml', (s: string) => YAML.parse(s)],
  ])('-o %s: {app, namespace, activeService, items}', async (o, parse) => {
    const doc = parse((await withHistory().run('history', 'shop', '-o', o)).out);
    expect(doc).toEqual({ app: 'shop', namespace: 'default', activeService: 'shop', items: records });
  });

  it("a REASON column when a record has one (the reconciler's rollback after a failed post-switch check)", async () => {
    const r = await withHistory([
      records[0],
      { kind: 'rollback', from: 'green', to: 'blue', at: '2026-01-01T11:59:00.000Z', by: 'kube-bluegreen', reason: 'post-switch check failed: error rate 12%' },
    ]).run('history', 'shop');
    expect(r.out).toBe(`#   KIND       FROM    TO      AGE    BY               IMAGES            REASON
1   switch     blue    green   120m   alice            app=reg/shop:v2
2   rollback   green   blue    60s    kube-bluegreen   <none>            post-switch check failed: error rate 12%
`);
  });

  it.each([
    ['no history yet', null, { code: 0, out: '', err: 'No switches recorded for app shop in default namespace.\n' }],
    [
      'an unreadable annotation',
      'not json',
      { code: 0, out: '', err: 'warning: Service shop: the history annotation is not valid JSON\nNo switches recorded for app shop in default namespace.\n' },
    ],
  ])('%s', async (_n, h, expected) => {
    expect(await withHistory(h).run('history', 'shop')).toEqual(expected);
  });

  it('an app that is not enrolled: exit 1', async () => {
    expect((await harness().run('history', 'shop')).code).toBe(1);
  });
});

describe('abort', () => {
  function pendingRollout() {
    const h = harness({ cluster: new FakeCluster() });
    seedShop(h.cluster, { green: { ready: 1, updated: 1 } });
    return h;
  }

  it("sets the idle colour's template back to the live one (idle slot label kept), guarded by resourceVersion", async () => {
    const h = pendingRollout();
    const blue = h.cluster.peek<Deployment>('deployments', 'shop-blue')!;
    const green = h.cluster.peek<Deployment>('deployments', 'shop-green')!;
    const r = await h.run('abort', 'shop');
    expect(r).toEqual({
      code: 0,
      out: `abort the rollout of shop-green (green, idle) in namespace default
  images:     app=registry.example/shop:v2 -> app=registry.example/shop:v1
  template:   ${templateHash(green.spec!.template, 'slot')} -> ${templateHash(blue.spec!.template, 'slot')} (the live version, blue)
aborted: shop-green is back to the live version of shop; its pods roll back to it now (to free them: 'kubectl scale deployment/shop-green --replicas=0')
`,
      err: '',
    });
    const after = h.cluster.peek<Deployment>('deployments', 'shop-green')!;
    expect(after.spec!.template!.metadata!.labels).toEqual({ app: 'shop', slot: 'green' });
    expect(after.spec!.template!.spec!.containers![0]!.image).toBe('registry.example/shop:v1');
    expect(after.spec!.replicas).toBe(3);
    const w = h.cluster.realWrites();
    expect(w).toHaveLength(1);
    expect(w[0]!.type).toBe('json');
    expect((w[0]!.patch as { op: string; path: string; value?: unknown }[])[0]).toEqual({
      op: 'test',
      path: '/metadata/resourceVersion',
      value: green.metadata.resourceVersion,
    });
    // Now nothing is pending: a second abort is refused.
    expect((await h.run('abort', 'shop')).code).toBe(2);
  });

  it('--scale-down also scales the idle colour to 0', async () => {
    const h = pendingRollout();
    const r = await h.run('abort', 'shop', '--scale-down');
    expect(r.out).toContain('  replicas:   3 -> 0\n');
    expect(r.out).toContain('aborted: shop-green is back to the live version of shop and scaled down\n');
    expect(h.cluster.peek<Deployment>('deployments', 'shop-green')!.spec!.replicas).toBe(0);
  });

  it('--dry-run changes nothing', async () => {
    const h = pendingRollout();
    const before = h.cluster.snapshot();
    const r = await h.run('abort', 'shop', '--dry-run');
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[0]).toBe('abort the rollout of shop-green (green, idle) in namespace default (dry run)');
    expect(r.out).toContain('server dry run: accepted by the API server and its admission webhooks; nothing was changed\n');
    expect(h.cluster.snapshot()).toBe(before);
    expect(h.cluster.writes.every((x) => x.dryRun)).toBe(true);
  });

  it('retries when the idle Deployment changed in between (failed resourceVersion test)', async () => {
    const h = pendingRollout();
    // Bump green's resourceVersion right after abort reads it, once.
    const orig = h.cluster.listDeployments.bind(h.cluster);
    let bumped = false;
    h.cluster.listDeployments = async (ns, sel) => {
      const r = await orig(ns, sel);
      if (!bumped) {
        bumped = true;
        h.cluster.put('deployments', h.cluster.peek<Deployment>('deployments', 'shop-green')!);
      }
      return r;
    };
    const r = await h.run('abort', 'shop');
    expect(r.code).toBe(0);
    expect(r.err).toBe('shop-green changed since it was read; reading it again (retry 1 of 3)\n');
    expect(h.cluster.peek<Deployment>('deployments', 'shop-green')!.spec!.template!.spec!.containers![0]!.image).toBe('registry.example/shop:v1');
  });

  it.each([
    [
      'the idle colour already runs the live version',
      () => {
        const h = harness();
        seedShop(h.cluster, { green: { image: 'registry.example/shop:v1' } });
        return h;
      },
      `error: nothing to abort: shop-green (green, idle) already runs the live version of shop
hint: kubectl bg status shop
`,
    ],
    [
      'the idle colour holds the previous version (kept for a rollback)',
      () => {
        const h = harness();
        const blue = dep('shop-blue', { colour: 'blue', live: false });
        const green = dep('shop-green', { colour: 'green', live: true, image: 'registry.example/shop:v2' });
        h.cluster.put('deployments', blue);
        h.cluster.put('deployments', green);
        const rec = { kind: 'switch', from: 'blue', to: 'green', at: '2026-01-01T11:00:00.000Z', fromTemplate: templateHash(blue.spec!.template, 'slot') };
        h.cluster.put('services', svc('shop', { selector: { app: 'shop', slot: 'green' }, annotations: { [HISTORY_ANNOTATION]: JSON.stringify([rec]) } }));
        return h;
      },
      `error: nothing to abort: shop-blue (blue, idle) holds the version that was live before the last switch, kept for a rollback
hint: kubectl bg rollback shop
`,
    ],
  ])('refuses when %s: exit 2, nothing written', async (_n, make, err) => {
    const h = make();
    expect(await h.run('abort', 'shop')).toEqual({ code: 2, out: '', err });
    expect(h.cluster.writes).toEqual([]);
  });

  it('a refusal by the API server (policy or webhook): exit 2', async () => {
    const h = pendingRollout();
    h.cluster.admit = () => {
      throw webhookDenial('no');
    };
    const r = await h.run('abort', 'shop');
    expect(r.code).toBe(2);
    expect(r.err).toContain('error: the API server refused to change shop-green: admission webhook');
  });
});
