// kubectl bg init: enrol a single Deployment + Service (copy) or a hand-made
// blue/green pair (adopt); every step skipped when done, so a second run is a no-op.
import { describe, expect, it } from 'vitest';
import type { Deployment, Service } from '../../../src/core/k8s-types.ts';
import { resolveApp } from '../../../src/core/app.ts';
import { appStatus } from '../../../src/core/status.ts';
import { FakeCluster, webhookDenial } from './fake-cluster.ts';
import { harness } from './harness.ts';

function plainShop(replicas = 3): Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'shop',
      namespace: 'default',
      labels: { app: 'shop' },
      annotations: { 'deployment.kubernetes.io/revision': '4', 'kubectl.kubernetes.io/last-applied-configuration': '{}', team: 'payments' },
      uid: 'u-1',
      creationTimestamp: '2025-01-01T00:00:00Z',
      generation: 4,
      managedFields: [{ manager: 'kubectl' }],
    },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'shop' } },
      strategy: { type: 'RollingUpdate' },
      template: {
        metadata: { labels: { app: 'shop' }, creationTimestamp: null },
        spec: { containers: [{ name: 'web', image: 'registry.example/shop:v1', ports: [{ containerPort: 8080 }] }] },
      },
    },
    status: { observedGeneration: 4, replicas, updatedReplicas: replicas, readyReplicas: replicas, availableReplicas: replicas },
  };
}
function plainService(name = 'shop', selector: Record<string, string> = { app: 'shop' }): Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default', labels: { app: 'shop' } }, spec: { selector, ports: [{ port: 80 }] } };
}

function fresh() {
  const h = harness({ cluster: new FakeCluster() });
  h.cluster.put('deployments', plainShop());
  h.cluster.put('services', plainService());
  h.cluster.tick();
  return h;
}

const COPY_OUT = `enrolling app shop in namespace default (slot label slot)
deployment.apps/shop-blue created (copy of shop, slot=blue, 3 replicas, live)
deployment.apps/shop-green created (copy of shop, slot=green, 0 replicas: idle, scaled down until a change is redirected to it)
waiting for deployment.apps/shop-blue to be available at 3 replicas (timeout 5m)
deployment.apps/shop-blue is available
service/shop patched (label bluegreen.io/app=shop, annotation bluegreen.io/role=active, selector += slot=blue)
deployment.apps/shop deleted (replaced by shop-blue; keep it with --keep-source)
enrolled app shop: blue is live (shop-blue), green is idle (shop-green, 0 replicas), Service shop, slot label slot
Next: change it as usual, e.g. 'kubectl set image deployment/shop-blue web=IMAGE' (the change goes to shop-green), then 'kubectl bg status shop' and 'kubectl bg switch shop'
`;

describe('init (copy a single Deployment)', () => {
  it('creates blue (live) and green (scaled down), waits for blue, points the Service at it, deletes the source', async () => {
    const h = fresh();
    expect(await h.run('init', 'shop', '--from', 'deployment/shop')).toEqual({ code: 0, out: COPY_OUT, err: '' });
    const blue = h.cluster.peek<Deployment>('deployments', 'shop-blue')!;
    expect(blue.metadata.labels).toEqual({ app: 'shop', 'bluegreen.io/app': 'shop', 'bluegreen.io/live': 'true' });
    expect(blue.metadata.annotations).toEqual({ team: 'payments' });
    expect(blue.metadata.managedFields).toBeUndefined();
    expect(blue.spec!.replicas).toBe(3);
    expect(blue.spec!.selector).toEqual({ matchLabels: { app: 'shop', slot: 'blue' } });
    expect(blue.spec!.template!.metadata!.labels).toEqual({ app: 'shop', slot: 'blue' });
    expect(blue.spec!.strategy).toEqual({ type: 'RollingUpdate' });
    const green = h.cluster.peek<Deployment>('deployments', 'shop-green')!;
    expect(green.spec!.replicas).toBe(0);
    expect(green.metadata.labels!['bluegreen.io/live']).toBe('false');
    expect(green.spec!.template!.metadata!.labels).toEqual({ app: 'shop', slot: 'green' });
    const s = h.cluster.peek<Service>('services', 'shop')!;
    expect(s.spec!.selector).toEqual({ app: 'shop', slot: 'blue' });
    expect(s.metadata.labels!['bluegreen.io/app']).toBe('shop');
    expect(s.metadata.annotations).toEqual({ 'bluegreen.io/role': 'active' });
    expect(h.cluster.peek('deployments', 'shop')).toBeUndefined();
    // The app resolves: blue live, green idle, same version (stable).
    const st = appStatus(
      resolveApp({
        namespace: 'default',
        app: 'shop',
        deployments: await h.cluster.listDeployments('default'),
        services: await h.cluster.listServices('default'),
      }),
    );
    expect([st.live, st.phase, st.problems]).toEqual(['blue', 'stable', []]);
  });

  it('is safe to run twice: the second run says so, exit 0, writes nothing', async () => {
    const h = fresh();
    await h.run('init', 'shop', '--from', 'deployment/shop');
    const before = h.cluster.snapshot();
    const writes = h.cluster.writes.length;
    expect(await h.run('init', 'shop', '--from', 'deployment/shop')).toEqual({
      code: 0,
      out: 'app shop is already enrolled in namespace default: blue is live (shop-blue), green is idle (shop-green, 0 replicas), Service shop, slot label slot; nothing to do\n',
      err: '',
    });
    expect(await h.run('init', 'shop')).toMatchObject({ code: 0 });
    expect(h.cluster.snapshot()).toBe(before);
    expect(h.cluster.writes.length).toBe(writes);
  });

  it('--keep-source keeps the source (it no longer receives traffic); a second run changes nothing', async () => {
    const h = fresh();
    const r = await h.run('init', 'shop', '--from', 'deployment/shop', '--keep-source');
    expect(r.code).toBe(0);
    expect(r.out).not.toContain('deleted');
    expect(h.cluster.peek('deployments', 'shop')).toBeDefined();
    const before = h.cluster.snapshot();
    expect((await h.run('init', 'shop', '--from', 'deployment/shop', '--keep-source')).out).toContain('is already enrolled');
    expect(h.cluster.snapshot()).toBe(before);
  });

  it('--slot-label names another key; it is recorded on every object', async () => {
    const h = fresh();
    const r = await h.run('init', 'shop', '--from', 'deploy/shop', '--slot-label', 'version');
    expect(r.code).toBe(0);
    const blue = h.cluster.peek<Deployment>('deployments', 'shop-blue')!;
    expect(blue.spec!.selector!.matchLabels).toEqual({ app: 'shop', version: 'blue' });
    expect(blue.metadata.annotations!['bluegreen.io/slot-label']).toBe('version');
    const s = h.cluster.peek<Service>('services', 'shop')!;
    expect(s.metadata.annotations).toEqual({ 'bluegreen.io/role': 'active', 'bluegreen.io/slot-label': 'version' });
    expect(s.spec!.selector).toEqual({ app: 'shop', version: 'blue' });
  });

  it('--dry-run prints the steps and changes nothing', async () => {
    const h = fresh();
    const before = h.cluster.snapshot();
    expect(await h.run('init', 'shop', '--from', 'deployment/shop', '--dry-run')).toEqual({
      code: 0,
      out: `enrolling app shop in namespace default (slot label slot) (dry run)
deployment.apps/shop-blue created (dry run) (copy of shop, slot=blue, 3 replicas, live)
deployment.apps/shop-green created (dry run) (copy of shop, slot=green, 0 replicas: idle, scaled down until a change is redirected to it)
would wait for deployment.apps/shop-blue to be available at 3 replicas
service/shop patched (dry run) (label bluegreen.io/app=shop, annotation bluegreen.io/role=active, selector += slot=blue)
deployment.apps/shop deleted (dry run) (replaced by shop-blue; keep it with --keep-source)
nothing was changed
`,
      err: '',
    });
    expect(h.cluster.snapshot()).toBe(before);
    expect(h.cluster.writes).toEqual([]);
  });

  it('times out (exit 3) when blue does not become available, leaving the Service alone; a rerun finishes', async () => {
    const h = fresh();
    h.cluster.stuck.add('shop-blue');
    const r = await h.run('init', 'shop', '--from', 'deployment/shop', '--timeout', '1s');
    expect(r.code).toBe(3);
    expect(r.err)
      .toBe(`error: timed out after 1s waiting for Deployment shop-blue to be available at 3 replicas: shop-blue is still rolling out (its controller has not observed generation 1)
hint: the Service was not changed yet; run 'kubectl bg init shop --from deployment/shop' again to finish
`);
    expect(h.cluster.peek<Service>('services', 'shop')!.spec!.selector).toEqual({ app: 'shop' });
    h.cluster.stuck.clear();
    const again = await h.run('init', 'shop', '--from', 'deployment/shop');
    expect(again.code).toBe(0);
    expect(again.out).toBe(`enrolling app shop in namespace default (slot label slot)
waiting for deployment.apps/shop-blue to be available at 3 replicas (timeout 5m)
deployment.apps/shop-blue is available
service/shop patched (label bluegreen.io/app=shop, annotation bluegreen.io/role=active, selector += slot=blue)
deployment.apps/shop deleted (replaced by shop-blue; keep it with --keep-source)
enrolled app shop: blue is live (shop-blue), green is idle (shop-green, 0 replicas), Service shop, slot label slot
Next: change it as usual, e.g. 'kubectl set image deployment/shop-blue web=IMAGE' (the change goes to shop-green), then 'kubectl bg status shop' and 'kubectl bg switch shop'
`);
  });

  it('a refusal by the webhook when enrolling the Service: exit 2, the source stays', async () => {
    const h = fresh();
    h.cluster.admit = (w) => {
      if (w.kind === 'services') throw webhookDenial("Service shop cannot send app shop's traffic to blue yet: shop-blue has 0/3 available replicas");
    };
    const r = await h.run('init', 'shop', '--from', 'deployment/shop');
    expect(r.code).toBe(2);
    expect(r.err).toContain('error: cannot enrol service/shop: admission webhook "validate.bluegreen.io" denied the request');
    expect(h.cluster.peek('deployments', 'shop')).toBeDefined();
  });

  it.each([
    ['the source does not exist', ['init', 'shop', '--from', 'deployment/nope'], 1, 'error: deployment/nope not found in namespace default\n'],
    [
      'no --from for an app that is not enrolled',
      ['init', 'shop'],
      64,
      'error: app shop is not enrolled and no Deployment to start from was given\nhint: kubectl bg init shop --from deployment/NAME\n',
    ],
    ['a malformed --from', ['init', 'shop', '--from', 'service/shop'], 64, 'error: invalid value "service/shop" for --from: use deployment/NAME\n'],
    [
      '--service that does not exist',
      ['init', 'shop', '--from', 'deployment/shop', '--service', 'nope'],
      1,
      'error: service/nope not found in namespace default\n',
    ],
  ])('%s: exit %i', async (_n, argv, code, err) => {
    const h = fresh();
    const before = h.cluster.snapshot();
    expect(await h.run(...argv)).toEqual({ code, out: '', err });
    expect(h.cluster.snapshot()).toBe(before);
  });

  it('two Services selecting the pods and none named after the app: asks for --service (exit 64)', async () => {
    const h = harness();
    h.cluster.put('deployments', plainShop());
    h.cluster.put('services', plainService('front'));
    h.cluster.put('services', plainService('internal'));
    const r = await h.run('init', 'shop', '--from', 'deployment/shop');
    expect(r).toEqual({
      code: 64,
      out: '',
      err: `error: 2 Services select the pods of deployment/shop (front, internal)
hint: name the one carrying the traffic: 'kubectl bg init shop --from deployment/shop --service NAME'
`,
    });
    expect((await h.run('init', 'shop', '--from', 'deployment/shop', '--service', 'front')).code).toBe(0);
    expect(h.cluster.peek<Service>('services', 'front')!.spec!.selector).toEqual({ app: 'shop', slot: 'blue' });
    expect(h.cluster.peek<Service>('services', 'internal')!.spec!.selector).toEqual({ app: 'shop' });
  });

  it('no Service selects the pods: exit 1 with the next step', async () => {
    const h = harness();
    h.cluster.put('deployments', plainShop());
    const r = await h.run('init', 'shop', '--from', 'deployment/shop');
    expect(r.code).toBe(1);
    expect(r.err).toBe(`error: no Service of app shop found in namespace default: none is named shop or selects the pods of deployment/shop
hint: create one, or name it with 'kubectl bg init shop --from deployment/NAME --service NAME'
`);
  });
});

describe('init (adopt a hand-made blue/green pair, as in the seeds)', () => {
  function seedPair() {
    const h = harness();
    for (const c of ['blue', 'green'] as const) {
      const d = plainShop();
      d.metadata = { name: `mon-app-${c}`, namespace: 'default', labels: { app: 'mon-app', environment: c }, generation: 1 };
      d.spec!.selector = { matchLabels: { app: 'mon-app', environment: c } };
      d.spec!.template!.metadata = { labels: { app: 'mon-app', environment: c, version: c === 'blue' ? 'v1.0.0' : 'v2.0.0' } };
      d.spec!.template!.spec!.containers![0]!.image = `localhost:32000/mon-app:${c === 'blue' ? 'v1.0.0' : 'v2.0.0'}`;
      h.cluster.put('deployments', d);
      h.cluster.put('services', {
        ...plainService(`mon-app-${c}`, { app: 'mon-app', environment: c }),
        metadata: { name: `mon-app-${c}`, namespace: 'default', labels: { app: 'mon-app', environment: c } },
      });
    }
    h.cluster.put('services', {
      ...plainService('mon-app', { app: 'mon-app', environment: 'green' }),
      metadata: { name: 'mon-app', namespace: 'default', labels: { app: 'mon-app' } },
    });
    h.cluster.tick();
    return h;
  }

  it('detects the slot label, labels both colours in place and enrols the Service; the selector already names the live colour', async () => {
    const h = seedPair();
    const r = await h.run('init', 'mon-app', '--from', 'deployment/mon-app-blue');
    expect(r).toEqual({
      code: 0,
      out: `enrolling app mon-app in namespace default (slot label environment)
deployment.apps/mon-app-green labeled (green, live: bluegreen.io/app=mon-app,bluegreen.io/live=true,bluegreen.io/slot-label=environment)
deployment.apps/mon-app-blue labeled (blue, idle: bluegreen.io/app=mon-app,bluegreen.io/live=false,bluegreen.io/slot-label=environment)
waiting for deployment.apps/mon-app-green to be available at 3 replicas (timeout 5m)
deployment.apps/mon-app-green is available
service/mon-app patched (label bluegreen.io/app=mon-app, annotation bluegreen.io/role=active, annotation bluegreen.io/slot-label=environment)
enrolled app mon-app: green is live (mon-app-green), blue is idle (mon-app-blue, 3 replicas), Service mon-app, slot label environment
Next: change it as usual, e.g. 'kubectl set image deployment/mon-app-green web=IMAGE' (the change goes to mon-app-blue), then 'kubectl bg status mon-app' and 'kubectl bg switch mon-app'
`,
      err: '',
    });
    // Pod templates untouched (no rollout), per-colour Services left alone.
    expect(
      h.cluster.writes
        .filter((w) => w.kind === 'deployments')
        .every((w) => JSON.stringify(w.patch).includes('"metadata"') && !JSON.stringify(w.patch).includes('spec')),
    ).toBe(true);
    expect(h.cluster.peek<Service>('services', 'mon-app-blue')!.metadata.labels).toEqual({ app: 'mon-app', environment: 'blue' });
    const st = appStatus(
      resolveApp({
        namespace: 'default',
        app: 'mon-app',
        deployments: await h.cluster.listDeployments('default', 'bluegreen.io/app=mon-app'),
        services: await h.cluster.listServices('default', 'bluegreen.io/app=mon-app'),
      }),
    );
    expect([st.slotLabel, st.live, st.phase, st.problems]).toEqual(['environment', 'green', 'ready-to-switch', []]);
    // Twice: nothing to do.
    const before = h.cluster.snapshot();
    expect((await h.run('init', 'mon-app', '--from', 'deployment/mon-app-blue')).out).toBe(
      'app mon-app is already enrolled in namespace default: green is live (mon-app-green), blue is idle (mon-app-blue, 3 replicas), Service mon-app, slot label environment; nothing to do\n',
    );
    expect(h.cluster.snapshot()).toBe(before);
  });

  it('creates the missing second colour, scaled down, named after the first', async () => {
    const h = seedPair();
    h.cluster.store.get('deployments')!.delete('default/mon-app-green');
    const s = h.cluster.peek<Service>('services', 'mon-app')!;
    s.spec!.selector = { app: 'mon-app', environment: 'blue' };
    h.cluster.put('services', s);
    const r = await h.run('init', 'mon-app', '--from', 'deployment/mon-app-blue');
    expect(r.code).toBe(0);
    expect(r.out).toContain(
      'deployment.apps/mon-app-green created (copy of mon-app-blue, environment=green, 0 replicas: idle, scaled down until a change is redirected to it)\n',
    );
    const green = h.cluster.peek<Deployment>('deployments', 'mon-app-green')!;
    expect(green.spec!.selector!.matchLabels).toEqual({ app: 'mon-app', environment: 'green' });
    expect(green.spec!.template!.metadata!.labels).toEqual({ app: 'mon-app', environment: 'green', version: 'v1.0.0' });
  });
});
