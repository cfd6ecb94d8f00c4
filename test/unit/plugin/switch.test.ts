// kubectl bg switch and rollback, against the fake cluster: exact output,
// exit codes, and exactly which writes reach the cluster.
import { describe, expect, it } from 'vitest';
import type { Deployment, Service } from '../../../src/core/k8s-types.ts';
import { parseHistory } from '../../../src/core/history.ts';
import { FORCE_SWITCH_ANNOTATION, HISTORY_ANNOTATION, LIVE_LABEL, SCALE_DOWN_AT_ANNOTATION } from '../../../src/core/labels.ts';
import { templateHash } from '../../../src/core/template.ts';
import { conflict, FakeCluster, webhookDenial } from './fake-cluster.ts';
import { dep, harness, seedShop, svc } from './harness.ts';

const PLAN = `  Deployment/shop-green   label bluegreen.io/live: false -> true
  Service/shop            selector slot: blue -> green
  Service/shop            history: + switch blue -> green by alice
  Service/shop            bluegreen.io/scale-down-at: 2026-01-01T12:10:00.000Z (blue stays warm for 10m)
  Service/shop-preview    selector slot: green -> blue
  Deployment/shop-blue    label bluegreen.io/live: true -> false
`;

const AFTER = `before:   blue is live    shop-blue    3/3 ready   app=registry.example/shop:v1
after:    green is live   shop-green   3/3 ready   app=registry.example/shop:v2
switched shop to green; blue stays warm for 10m (until 2026-01-01T12:10:00.000Z), then is scaled down. Roll back with 'kubectl bg rollback shop'
`;

function ready(o: { preview?: boolean } = { preview: true }) {
  const h = harness({ cluster: new FakeCluster({ user: 'alice' }) });
  seedShop(h.cluster, o);
  return h;
}
const live = (c: FakeCluster, name: string) => c.peek<Deployment>('deployments', name)!.metadata.labels?.[LIVE_LABEL];
const selector = (c: FakeCluster, name = 'shop') => c.peek<Service>('services', name)!.spec?.selector;

describe('switch with a change pending for the idle colour', () => {
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
  const pending = () => {
    const h = ready();
    seedShop(h.cluster, { preview: true, blue: { annotations: { 'bluegreen.io/pending-change': record } } });
    return h;
  };

  it('without --wait: refused (exit 2), naming the change and --wait', async () => {
    const h = pending();
    const r = await h.run('switch', 'shop');
    expect(r.code).toBe(2);
    expect(r.err).toContain(
      'cannot switch shop to green: the image change by bob (2s ago) recorded on shop-blue has not reached shop-green yet; it is being applied',
    );
    expect(r.err).toContain("'kubectl bg switch shop --wait' waits for it to land and roll out");
    expect(h.cluster.realWrites()).toEqual([]);
  });

  it('with --wait: waits until the reconciler settled it (the outcome on shop-green), then switches', async () => {
    const h = ready();
    seedShop(h.cluster, { preview: true, blue: { annotations: { 'bluegreen.io/pending-change': record } } });
    let settledAt = 0;
    const hs = harness({
      cluster: h.cluster,
      onSleep: (n) => {
        if (n !== 3) return;
        // The reconciler: the change and its outcome land on shop-green.
        const g = h.cluster.peek<Deployment>('deployments', 'shop-green')!;
        g.metadata.annotations = {
          ...g.metadata.annotations,
          'bluegreen.io/last-change': JSON.stringify({ request: 'req-9', applied: true, at: '2026-01-01T11:59:58.000Z' }),
        };
        h.cluster.put('deployments', g);
        settledAt = n;
      },
    });
    const r = await hs.run('switch', 'shop', '--wait');
    expect(settledAt).toBe(3);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(
      /^waiting for the change recorded for the idle colour to land and roll out \(timeout 5m\): cannot switch shop to green: the image change by bob/,
    );
    expect(selector(h.cluster)).toEqual({ app: 'shop', slot: 'green' });
  });
});

describe('switch', () => {
  it('flips the Service and the preview, moves the live label, records the switch, prints before/after', async () => {
    const h = ready();
    const r = await h.run('switch', 'shop');
    expect(r).toEqual({ code: 0, out: `switch shop in namespace default: blue -> green\n${PLAN}${AFTER}`, err: '' });
    expect(h.cluster.realWrites().map((w) => `${w.op} ${w.kind}/${w.name}`)).toEqual([
      'patch deployments/shop-green',
      'patch services/shop',
      'patch services/shop-preview',
      'patch deployments/shop-blue',
    ]);
    expect(selector(h.cluster)).toEqual({ app: 'shop', slot: 'green' });
    expect(selector(h.cluster, 'shop-preview')).toEqual({ app: 'shop', slot: 'blue' });
    expect([live(h.cluster, 'shop-blue'), live(h.cluster, 'shop-green')]).toEqual(['false', 'true']);
    const ann = h.cluster.peek<Service>('services', 'shop')!.metadata.annotations!;
    expect(ann[SCALE_DOWN_AT_ANNOTATION]).toBe('2026-01-01T12:10:00.000Z');
    expect(parseHistory(ann[HISTORY_ANNOTATION]).records).toEqual([
      expect.objectContaining({
        kind: 'switch',
        from: 'blue',
        to: 'green',
        at: '2026-01-01T12:00:00.000Z',
        by: 'alice',
        images: ['app=registry.example/shop:v2'],
      }),
    ]);
    // The Service patch carried the resourceVersion it was planned from.
    const svcPatch = h.cluster.realWrites().find((w) => w.kind === 'services' && w.name === 'shop')!.patch as { metadata: { resourceVersion: string } };
    expect(svcPatch.metadata.resourceVersion).toMatch(/^\d+$/);
  });

  it.each([
    [
      'the idle colour is still rolling out',
      { green: { ready: 1, updated: 1 } },
      ['switch', 'shop'],
      `error: cannot switch shop to green: shop-green is still rolling out (1 of 3 pods updated, 3 running)
hint: wait with 'kubectl bg status shop --watch', or override with 'kubectl bg switch shop --force'
`,
    ],
    [
      'the idle colour is scaled down',
      { green: { replicas: 0, image: 'registry.example/shop:v1' } },
      ['switch', 'shop'],
      `error: cannot switch shop to green: shop-green is scaled to 0 replicas, fewer than the 3 the live colour runs
hint: wait with 'kubectl bg status shop --watch', or override with 'kubectl bg switch shop --force'
`,
    ],
    [
      '--to the live colour',
      {},
      ['switch', 'shop', '--to', 'blue'],
      `error: blue is already the live colour of shop
hint: kubectl bg status shop
`,
    ],
    [
      'no idle Deployment',
      { noGreen: true },
      ['switch', 'shop'],
      `error: app shop has no green Deployment
hint: kubectl bg init shop --from deployment/<name>
`,
    ],
  ])('refuses when %s: reason and next command on stderr, exit 2, nothing written', async (_n, seed, argv, err) => {
    const h = harness();
    const { noGreen, ...o } = seed as { noGreen?: boolean };
    seedShop(h.cluster, o);
    if (noGreen) h.cluster.store.get('deployments')!.delete('default/shop-green');
    const before = h.cluster.snapshot();
    expect(await h.run(...argv)).toEqual({ code: 2, out: '', err });
    expect(h.cluster.snapshot()).toBe(before);
    expect(h.cluster.writes).toEqual([]);
  });

  it('--dry-run prints the plan, asks the server with dryRun=All, changes nothing', async () => {
    const h = ready();
    const before = h.cluster.snapshot();
    const r = await h.run('switch', 'shop', '--dry-run');
    expect(r).toEqual({
      code: 0,
      out: `switch shop in namespace default: blue -> green (dry run)\n${PLAN.replace(' by alice', '')}server dry run: accepted by the API server and its admission webhooks; nothing was changed\n`,
      err: '',
    });
    expect(h.cluster.snapshot()).toBe(before);
    expect(h.cluster.writes.length).toBe(4);
    expect(h.cluster.writes.every((w) => w.dryRun)).toBe(true);
  });

  it("--dry-run shows the webhook's refusal, exit 2", async () => {
    const h = ready({ preview: false });
    h.cluster.admit = (w) => {
      if (w.kind === 'services') throw webhookDenial("Service shop cannot send app shop's traffic to green yet: shop-green has 2/3 available replicas");
    };
    const before = h.cluster.snapshot();
    const r = await h.run('switch', 'shop', '--dry-run');
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      `error: server dry run: the API server refuses this switch: admission webhook "validate.bluegreen.io" denied the request: Service shop cannot send app shop's traffic to green yet: shop-green has 2/3 available replicas
hint: kubectl bg status shop
`,
    );
    expect(h.cluster.snapshot()).toBe(before);
  });

  it('--dry-run of a refused switch is refused the same way (exit 2)', async () => {
    const h = harness();
    seedShop(h.cluster, { green: { ready: 0 } });
    expect((await h.run('switch', 'shop', '--dry-run')).code).toBe(2);
    expect(h.cluster.writes).toEqual([]);
  });

  it('on 409 Conflict re-reads the app, re-plans and retries', async () => {
    const h = ready({ preview: false });
    // Someone else changed the Service between our read and our patch.
    h.cluster.inject({
      op: 'patch',
      kind: 'services',
      name: 'shop',
      error: () => conflict('shop'),
      before: () => {
        const s = h.cluster.peek<Service>('services', 'shop')!;
        s.metadata.annotations = { ...s.metadata.annotations, 'example.com/touched': 'yes' };
        h.cluster.put('services', s);
      },
    });
    const r = await h.run('switch', 'shop');
    expect(r.code).toBe(0);
    expect(r.err).toBe('Service shop changed since it was read; reading it again (retry 1 of 3)\n');
    expect(selector(h.cluster)).toEqual({ app: 'shop', slot: 'green' });
    const ann = h.cluster.peek<Service>('services', 'shop')!.metadata.annotations!;
    expect(ann['example.com/touched']).toBe('yes');
    expect(parseHistory(ann[HISTORY_ANNOTATION]).records).toHaveLength(1);
    expect(h.cluster.realWrites().filter((w) => w.kind === 'services').length).toBe(2);
  });

  it('a retry never switches back: if another switch moved traffic to the same colour meanwhile, it stops (exit 2)', async () => {
    const h = ready({ preview: false });
    h.cluster.inject({
      op: 'patch',
      kind: 'services',
      name: 'shop',
      error: () => conflict('shop'),
      before: () => {
        const s = h.cluster.peek<Service>('services', 'shop')!;
        s.spec!.selector!.slot = 'green';
        h.cluster.put('services', s);
      },
    });
    const r = await h.run('switch', 'shop');
    expect(r.code).toBe(2);
    expect(r.err).toContain('error: green is already the live colour of shop\n');
    expect(selector(h.cluster)).toEqual({ app: 'shop', slot: 'green' });
    expect(live(h.cluster, 'shop-green')).toBe('true');
  });

  it('gives up after 3 retries (exit 1) and puts the live label back', async () => {
    const h = ready({ preview: false });
    h.cluster.inject({ op: 'patch', kind: 'services', name: 'shop', error: () => conflict('shop'), times: 100 });
    const r = await h.run('switch', 'shop');
    expect(r.code).toBe(1);
    expect(r.err).toBe(`Service shop changed since it was read; reading it again (retry 1 of 3)
Service shop changed since it was read; reading it again (retry 2 of 3)
Service shop changed since it was read; reading it again (retry 3 of 3)
error: Service shop kept changing while switching (4 attempts); nothing was switched
hint: kubectl bg switch shop
`);
    expect(selector(h.cluster)).toEqual({ app: 'shop', slot: 'blue' });
    expect([live(h.cluster, 'shop-blue'), live(h.cluster, 'shop-green')]).toEqual(['true', 'false']);
  });

  it('a refusal by the webhook on the real patch: exit 2, the live label put back', async () => {
    const h = ready({ preview: false });
    h.cluster.admit = (w) => {
      if (w.kind === 'services' && !w.dryRun)
        throw webhookDenial("Service shop cannot send app shop's traffic to green yet: a change is being redirected to shop-green right now (1s ago)");
    };
    const r = await h.run('switch', 'shop');
    expect(r.code).toBe(2);
    expect(r.err).toContain('error: the API server refused to switch Service shop: admission webhook "validate.bluegreen.io" denied the request');
    expect([live(h.cluster, 'shop-blue'), live(h.cluster, 'shop-green')]).toEqual(['true', 'false']);
    expect(selector(h.cluster)).toEqual({ app: 'shop', slot: 'blue' });
  });

  it('--force switches to a colour that is not ready, with a warning and the explicit override annotation', async () => {
    const h = harness();
    seedShop(h.cluster, { green: { ready: 2 } });
    const r = await h.run('switch', 'shop', '--force');
    expect(r.code).toBe(0);
    expect(r.err).toBe('warning: forced: shop-green has 2/3 available replicas\n');
    expect(r.out).toContain('  Service/shop            history: + switch blue -> green (forced)\n');
    const ann = h.cluster.peek<Service>('services', 'shop')!.metadata.annotations!;
    expect(ann[FORCE_SWITCH_ANNOTATION]).toBe('green');
    expect(parseHistory(ann[HISTORY_ANNOTATION]).records[0]!.forced).toBe(true);
  });

  it('--wait returns once the EndpointSlices hold only ready pods of the new colour', async () => {
    const h = ready({ preview: false });
    const r = await h.run('switch', 'shop', '--wait');
    expect(r.code).toBe(0);
    expect(r.out.split('\n').slice(-3).join('\n')).toBe(`waiting for the EndpointSlices of Service shop to hold only green pods (timeout 5m)
Service shop sends traffic only to green: 3 ready endpoints of shop-green (100ms)
`);
    expect(h.sleeps).toBe(1);
  });

  it('--wait --timeout: exit 3 when the endpoints do not follow in time (the switch itself is done)', async () => {
    const h = ready({ preview: false });
    h.cluster.controller = false; // no endpoints controller: the slices keep blue's pods
    const r = await h.run('switch', 'shop', '--wait', '--timeout', '1s');
    expect(r.code).toBe(3);
    expect(r.err).toBe(
      'error: timed out after 1s waiting for the EndpointSlices of Service shop to hold only pods of shop-green: 3 endpoints, 3 of other pods, 0 not ready\n',
    );
    expect(selector(h.cluster)).toEqual({ app: 'shop', slot: 'green' });
  });

  it.each([
    [['switch'], "error: missing required argument 'app'\n(add --help for usage)\n"],
    [['switch', 'shop', '--to', 'purple'], 'error: invalid value "purple" for --to: use blue or green\n'],
    [['switch', 'shop', '--timeout', 'forever'], 'error: invalid value "forever" for --timeout: use a duration such as 90s, 5m or 1h30m\n'],
  ])('usage error %j: exit 64', async (argv, err) => {
    const h = ready();
    expect(await h.run(...argv)).toEqual({ code: 64, out: '', err });
    expect(h.cluster.writes).toEqual([]);
  });

  it('an app that is not enrolled: exit 1', async () => {
    const h = harness();
    const r = await h.run('switch', 'shop');
    expect(r.code).toBe(1);
    expect(r.err).toContain('error: app shop is not enrolled in namespace default');
  });
});

describe('rollback', () => {
  function afterSwitch(o: { blueReplicas?: number; stuck?: boolean } = {}) {
    const h = harness({ cluster: new FakeCluster({ user: 'alice' }) });
    const blue = dep('shop-blue', { colour: 'blue', live: false, replicas: o.blueReplicas ?? 3 });
    const green = dep('shop-green', { colour: 'green', live: true, image: 'registry.example/shop:v2' });
    const record = {
      kind: 'switch',
      from: 'blue',
      to: 'green',
      at: '2026-01-01T11:00:00.000Z',
      fromTemplate: templateHash(blue.spec!.template, 'slot'),
      toTemplate: templateHash(green.spec!.template, 'slot'),
    };
    h.cluster.put('deployments', blue);
    h.cluster.put('deployments', green);
    h.cluster.put(
      'services',
      svc('shop', {
        selector: { app: 'shop', slot: 'green' },
        annotations: { [HISTORY_ANNOTATION]: JSON.stringify([record]), [SCALE_DOWN_AT_ANNOTATION]: '2026-01-01T11:10:00.000Z' },
      }),
    );
    if (o.stuck) h.cluster.stuck.add('shop-blue');
    h.cluster.tick();
    return h;
  }

  it('switches back to the previous colour at once when it is warm', async () => {
    const h = afterSwitch();
    const r = await h.run('rollback', 'shop');
    expect(r).toEqual({
      code: 0,
      out: `rollback shop in namespace default: green -> blue
  Deployment/shop-blue    label bluegreen.io/live: false -> true
  Service/shop            selector slot: green -> blue
  Service/shop            history: + rollback green -> blue by alice
  Service/shop            bluegreen.io/scale-down-at: 2026-01-01T12:10:00.000Z (green stays warm for 10m)
  Deployment/shop-green   label bluegreen.io/live: true -> false
before:   green is live   shop-green   3/3 ready   app=registry.example/shop:v2
after:    blue is live    shop-blue    3/3 ready   app=registry.example/shop:v1
rolled back shop to blue; green stays warm for 10m (until 2026-01-01T12:10:00.000Z), then is scaled down. Switch again with 'kubectl bg switch shop'
`,
      err: '',
    });
    expect(selector(h.cluster)).toEqual({ app: 'shop', slot: 'blue' });
  });

  it('scales a scaled-down previous colour up, waits for it, then switches back', async () => {
    const h = afterSwitch({ blueReplicas: 0 });
    const r = await h.run('rollback', 'shop');
    expect(r.code).toBe(0);
    expect(r.out.split('\n').slice(0, 5).join('\n')).toBe(`scaled shop-blue up to 3 replicas (it was scaled down after the last switch)
waiting for shop-blue to be available at 3 replicas (timeout 5m)
shop-blue is available
rollback shop in namespace default: green -> blue
  Deployment/shop-blue    label bluegreen.io/live: false -> true`);
    expect(
      h.cluster
        .realWrites()
        .map((w) => `${w.op} ${w.kind}/${w.name} ${JSON.stringify(w.patch)}`)
        .slice(0, 2),
    ).toEqual([
      // The due scale-down is cleared first, so the webhook's loop does not scale blue down again.
      expect.stringMatching(/^patch services\/shop \{"metadata":\{"resourceVersion":"\d+","annotations":\{"bluegreen.io\/scale-down-at":null\}\}\}$/),
      'patch deployments/shop-blue {"spec":{"replicas":3}}',
    ]);
    expect(selector(h.cluster)).toEqual({ app: 'shop', slot: 'blue' });
    expect(h.cluster.peek<Deployment>('deployments', 'shop-blue')!.spec!.replicas).toBe(3);
  });

  it('exit 3 when the scaled-up colour is not available within --timeout', async () => {
    const h = afterSwitch({ blueReplicas: 0, stuck: true });
    const r = await h.run('rollback', 'shop', '--timeout', '2s');
    expect(r.code).toBe(3);
    expect(r.err).toBe(
      'error: timed out after 2s waiting for Deployment shop-blue to be available at 3 replicas: shop-blue is still rolling out (its controller has not observed generation 3)\n',
    );
    expect(selector(h.cluster)).toEqual({ app: 'shop', slot: 'green' });
  });

  it('--dry-run of a rollback that needs a scale-up says so and changes nothing', async () => {
    const h = afterSwitch({ blueReplicas: 0 });
    const before = h.cluster.snapshot();
    expect(await h.run('rollback', 'shop', '--dry-run')).toEqual({
      code: 0,
      out: 'rollback shop in namespace default (dry run): shop-blue is scaled down; would scale it to 3 replicas, wait until it is available, then switch back. Nothing was changed.\n',
      err: '',
    });
    expect(h.cluster.snapshot()).toBe(before);
  });
});
