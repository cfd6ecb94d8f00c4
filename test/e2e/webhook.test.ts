// The webhook against the real control plane, driven by the real kubectl:
// every row of the product's "What the webhook does" table.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apply, createNamespace, kubectl, kubectlJson, kubectlOk, type TestNamespace, waitFor } from './helpers/cluster.ts';
import { type RunningWebhook, startWebhook } from './helpers/webhook.ts';
import { sampleApp } from '../fixtures/sample-app.ts';

interface Dep {
  metadata: { name: string; generation: number; resourceVersion: string; labels?: Record<string, string> };
  spec: {
    replicas: number;
    template: { metadata: { labels: Record<string, string> }; spec: { containers: { image: string }[]; nodeSelector?: Record<string, string> } };
  };
  status?: { availableReplicas?: number; updatedReplicas?: number; observedGeneration?: number };
}

let ns: TestNamespace;
let wh: RunningWebhook;
const k = (...args: string[]) => kubectl(['-n', ns.name, ...args]);
const dep = (name: string) => kubectlJson<Dep>(['-n', ns.name, 'get', 'deployment', name]);
const image = async (name: string) => (await dep(name)).spec.template.spec.containers[0]!.image;
const replicaSets = async (name: string) =>
  (await kubectlJson<{ items: { metadata: { name: string; ownerReferences?: { name: string }[] } }[] }>(['-n', ns.name, 'get', 'replicasets'])).items
    .filter((r) => r.metadata.ownerReferences?.some((o) => o.name === name))
    .map((r) => r.metadata.name)
    .sort();
/** The reconciler applies a recorded change moments after the user's command returns: wait for it. */
const landed = (name: string, image_: string) =>
  waitFor(async () => (await image(name)) === image_, { timeoutMs: 10_000, message: `${image_} to reach ${name}` });
const rolledOut = (name: string) => kubectlOk(['-n', ns.name, 'rollout', 'status', `deployment/${name}`, '--timeout=60s'], { timeoutMs: 70_000 });
const unschedulable = JSON.stringify([{ op: 'add', path: '/spec/template/spec/nodeSelector', value: { 'bluegreen.io/e2e': 'no-such-node' } }]);
const schedulable = JSON.stringify([{ op: 'remove', path: '/spec/template/spec/nodeSelector' }]);

beforeAll(async () => {
  ns = await createNamespace('webhook');
  await apply(sampleApp({ namespace: ns.name, replicas: 2 }));
  await apply(sampleApp({ namespace: ns.name, app: 'web', slotKey: 'environment', extraSelector: { tier: 'frontend' }, image: 'registry.example/web:v1' }));
  for (const d of ['shop-blue', 'shop-green', 'web-blue', 'web-green']) await rolledOut(d);
  wh = await startWebhook({ namespace: ns.name });
});

afterAll(async () => {
  await wh?.stop();
  await ns?.cleanup();
});

describe('a change to the live colour is redirected to the idle colour', () => {
  it('kubectl set image on shop-blue: blue keeps its image and ReplicaSets, green rolls out the new image', async () => {
    const blueRs = await replicaSets('shop-blue');
    const res = await k('set', 'image', 'deployment/shop-blue', 'app=registry.example/shop:v2');
    expect(res.code).toBe(0);
    expect(res.stderr).toContain(`Warning: image change redirected to shop-green (idle); run 'kubectl bg switch shop -n ${ns.name}' when it is ready`);
    expect(await image('shop-blue')).toBe('registry.example/shop:v1');
    await landed('shop-green', 'registry.example/shop:v2');
    expect(await image('shop-blue')).toBe('registry.example/shop:v1');
    const green = await dep('shop-green');
    expect(green.spec.template.metadata.labels.slot).toBe('green');
    await rolledOut('shop-green');
    expect(await replicaSets('shop-blue')).toEqual(blueRs);
    const greenNow = await dep('shop-green');
    expect(greenNow.status?.availableReplicas).toBe(2);
    expect(greenNow.status?.updatedReplicas).toBe(2);
  });

  it('records an Event on both Deployments', async () => {
    const events = await waitFor(async () => {
      const ev = await kubectlJson<{ items: { reason: string; involvedObject: { name: string }; message: string }[] }>(['-n', ns.name, 'get', 'events']);
      const live = ev.items.find((e) => e.reason === 'ChangeRedirected' && e.involvedObject.name === 'shop-blue');
      const idle = ev.items.find((e) => e.reason === 'RedirectedChange' && e.involvedObject.name === 'shop-green');
      return live && idle ? { live, idle } : undefined;
    });
    expect(events.live.message).toBe('the image change by kubernetes-admin went to shop-green (idle); shop-blue kept its template');
    expect(events.idle.message).toContain('received the image change by kubernetes-admin made to shop-blue');
  });

  it('--dry-run=server gives the same warning and changes nothing', async () => {
    const before = await dep('shop-green');
    const res = await k('set', 'image', 'deployment/shop-blue', 'app=registry.example/shop:v3', '--dry-run=server');
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('(server dry run)');
    expect(res.stderr).toContain('image change redirected to shop-green (idle)');
    const after = await dep('shop-green');
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    expect(await image('shop-green')).toBe('registry.example/shop:v2');
    expect(await image('shop-blue')).toBe('registry.example/shop:v1');
  });

  it('raises the idle colour to the live replica count when it was scaled down', async () => {
    await kubectlOk(['-n', ns.name, 'scale', 'deployment/shop-green', '--replicas=0']);
    const res = await k('set', 'env', 'deployment/shop-blue', 'GREETING=bonjour');
    expect(res.stderr).toContain('pod template change redirected to shop-green (idle)');
    const green = await waitFor(
      async () => {
        const d = await dep('shop-green');
        return d.spec.replicas === 2 ? d : undefined;
      },
      { timeoutMs: 10_000, message: 'shop-green raised to 2 replicas' },
    );
    expect(green.spec.replicas).toBe(2);
    expect(JSON.stringify(green.spec.template)).toContain('bonjour');
    expect(JSON.stringify((await dep('shop-blue')).spec.template)).not.toContain('bonjour');
    await rolledOut('shop-green');
  });

  it('an UPDATE of the idle colour is allowed as is', async () => {
    const res = await k('set', 'image', 'deployment/shop-green', 'app=registry.example/shop:v2-hotfix');
    expect(res.code).toBe(0);
    expect(res.stderr).toBe('');
    expect(await image('shop-green')).toBe('registry.example/shop:v2-hotfix');
    await rolledOut('shop-green');
  });
});

describe('scaling and deleting the live colour', () => {
  it('kubectl scale of the live colour to 5 works', async () => {
    const res = await k('scale', 'deployment/shop-blue', '--replicas=5');
    expect(res.code).toBe(0);
    expect((await dep('shop-blue')).spec.replicas).toBe(5);
    await rolledOut('shop-blue');
  });

  it.each([
    ['kubectl scale --replicas=0', ['scale', 'deployment/shop-blue', '--replicas=0'], 'scale.validate.bluegreen.io'],
    ['a patch to replicas 0', ['patch', 'deployment/shop-blue', '-p', '{"spec":{"replicas":0}}'], 'deployments.mutate.bluegreen.io'],
  ])('%s is refused with the reason and the safe command', async (_name, args, hook) => {
    const res = await k(...args);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(
      `admission webhook "${hook}" denied the request: Deployment shop-blue is the live colour (blue) of app shop; scaling it to 0 would take the app down`,
    );
    expect(res.stderr).toContain(`kubectl bg switch shop -n ${ns.name}`);
    expect((await dep('shop-blue')).spec.replicas).toBe(5);
  });

  it('kubectl delete of the live colour is refused', async () => {
    const res = await k('delete', 'deployment/shop-blue', '--wait=false');
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('Deployment shop-blue is the live colour (blue) of app shop: Service shop sends traffic to it');
    expect((await dep('shop-blue')).metadata.name).toBe('shop-blue');
  });

  it('a change to the slot label in a pod template is refused', async () => {
    const res = await k(
      'patch',
      'deployment/shop-green',
      '--type=json',
      '-p',
      '[{"op":"replace","path":"/spec/template/metadata/labels/slot","value":"blue"}]',
    );
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("the slot label of Deployment shop-green's pod template cannot change (green -> blue)");
  });
});

describe('the active Service selector', () => {
  it.each([
    ['drops the slot key', ['--type=json', '-p', '[{"op":"remove","path":"/spec/selector/slot"}]'], 'Service shop must keep slot in its selector'],
    ['names slot: purple', ['-p', '{"spec":{"selector":{"slot":"purple"}}}'], 'Service shop selects slot=purple, a colour that does not exist'],
  ])('a patch that %s is refused', async (_name, args, message) => {
    const res = await k('patch', 'service/shop', ...args);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(message);
    expect((await kubectlJson<{ spec: { selector: Record<string, string> } }>(['-n', ns.name, 'get', 'service', 'shop'])).spec.selector).toEqual({
      app: 'shop',
      slot: 'blue',
    });
  });

  it('switching to green is refused while green is not fully available, accepted once it is', async () => {
    await kubectlOk(['-n', ns.name, 'scale', 'deployment/shop-green', '--replicas=5']);
    await kubectlOk(['-n', ns.name, 'patch', 'deployment/shop-green', '--type=json', '-p', unschedulable]);
    const refused = await k('patch', 'service/shop', '-p', '{"spec":{"selector":{"slot":"green"}}}');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("Service shop cannot send app shop's traffic to green yet: shop-green");
    expect(refused.stderr).toContain(`kubectl bg switch shop -n ${ns.name} --force`);

    await kubectlOk(['-n', ns.name, 'patch', 'deployment/shop-green', '--type=json', '-p', schedulable]);
    await rolledOut('shop-green');
    const accepted = await k('patch', 'service/shop', '-p', '{"spec":{"selector":{"slot":"green"}}}');
    expect(accepted.stderr).toBe('');
    expect(accepted.code).toBe(0);
    // Traffic follows: the EndpointSlices hold green pods only.
    const greenPods = new Set(
      (await kubectlJson<{ items: { metadata: { name: string } }[] }>(['-n', ns.name, 'get', 'pods', '-l', 'slot=green'])).items.map((p) => p.metadata.name),
    );
    await waitFor(async () => {
      const slices = await kubectlJson<{ items: { endpoints?: { targetRef?: { name: string } }[] }[] }>([
        '-n',
        ns.name,
        'get',
        'endpointslices',
        '-l',
        'kubernetes.io/service-name=shop',
      ]);
      const names = slices.items.flatMap((s) => (s.endpoints ?? []).map((e) => e.targetRef?.name ?? ''));
      return names.length === greenPods.size && names.every((n) => greenPods.has(n));
    });
  });

  it('now green is live: set image on shop-green is redirected to shop-blue', async () => {
    const res = await k('set', 'image', 'deployment/shop-green', 'app=registry.example/shop:v4');
    expect(res.stderr).toContain(`image change redirected to shop-blue (idle); run 'kubectl bg switch shop -n ${ns.name}' when it is ready`);
    await landed('shop-blue', 'registry.example/shop:v4');
    expect(await image('shop-green')).toBe('registry.example/shop:v2-hotfix');
  });
});

describe('an app whose slot label is `environment`, with more labels in its selector', () => {
  it('redirects set image on web-blue to web-green, keeping environment=green and tier=frontend', async () => {
    const res = await k('set', 'image', 'deployment/web-blue', 'app=registry.example/web:v2');
    expect(res.stderr).toContain(`image change redirected to web-green (idle); run 'kubectl bg switch web -n ${ns.name}' when it is ready`);
    await landed('web-green', 'registry.example/web:v2');
    const green = await dep('web-green');
    expect(green.spec.template.metadata.labels).toEqual({ app: 'web', tier: 'frontend', environment: 'green' });
    expect(green.spec.template.spec.containers[0]!.image).toBe('registry.example/web:v2');
    expect(await image('web-blue')).toBe('registry.example/web:v1');
    await rolledOut('web-green');
  });

  it('refuses a selector without the environment key and a change of its environment template label', async () => {
    const svc = await k('patch', 'service/web', '--type=json', '-p', '[{"op":"remove","path":"/spec/selector/environment"}]');
    expect(svc.stderr).toContain('Service web must keep environment in its selector');
    const tpl = await k(
      'patch',
      'deployment/web-green',
      '--type=json',
      '-p',
      '[{"op":"replace","path":"/spec/template/metadata/labels/environment","value":"blue"}]',
    );
    expect(tpl.stderr).toContain("the environment label of Deployment web-green's pod template cannot change");
  });
});

describe('no confused deputy', () => {
  it("a user who may patch shop-green? no: rights on the live colour only get a clear refusal, not a redirect done with the webhook's rights", async () => {
    const live = (await kubectlJson<{ spec: { selector: Record<string, string> } }>(['-n', ns.name, 'get', 'service', 'shop'])).spec.selector.slot;
    const liveName = `shop-${live}`;
    const idleName = `shop-${live === 'blue' ? 'green' : 'blue'}`;
    await apply(
      [
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'Role',
          metadata: { name: 'live-only', namespace: ns.name },
          rules: [
            { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'watch'] },
            { apiGroups: ['apps'], resources: ['deployments'], resourceNames: [liveName], verbs: ['patch', 'update'] },
          ],
        },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: { name: 'alice-live-only', namespace: ns.name },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'live-only' },
          subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'alice' }],
        },
      ],
      { namespace: ns.name },
    );
    const idleBefore = await dep(idleName);
    const liveImage = await image(liveName);
    const res = await waitFor(async () => {
      const r = await k('--as=alice', 'set', 'image', `deployment/${liveName}`, 'app=registry.example/shop:alice');
      return r.stderr.includes('may not patch') ? r : undefined; // RBAC caches take a moment
    });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`user "alice" may not patch deployment ${idleName} in namespace ${ns.name}. Nothing was changed`);
    expect(await image(liveName)).toBe(liveImage);
    expect((await dep(idleName)).metadata.generation).toBe(idleBefore.metadata.generation);
  });
});

describe('with the webhook stopped', () => {
  it('a Deployment without the enrolment label is never touched; enrolled ones follow failurePolicy Fail', async () => {
    await apply({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'plain', namespace: ns.name, labels: { app: 'plain' } },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'plain' } },
        template: { metadata: { labels: { app: 'plain' } }, spec: { containers: [{ name: 'app', image: 'registry.example/plain:v1' }] } },
      },
    });
    const up = await k('set', 'image', 'deployment/plain', 'app=registry.example/plain:v2');
    expect(up.code).toBe(0);
    expect(up.stderr).toBe('');
    expect(await image('plain')).toBe('registry.example/plain:v2');

    await wh.kill();
    const down = await k('set', 'image', 'deployment/plain', 'app=registry.example/plain:v3');
    expect(down.code).toBe(0);
    expect(await image('plain')).toBe('registry.example/plain:v3');
    const scaled = await k('scale', 'deployment/plain', '--replicas=3');
    expect(scaled.code).toBe(0); // the scale entry is Ignore
    expect((await dep('plain')).spec.replicas).toBe(3);

    const enrolled = await k('set', 'image', 'deployment/shop-blue', 'app=registry.example/shop:while-down');
    expect(enrolled.code).toBe(1);
    expect(enrolled.stderr).toContain('failed calling webhook "deployments.mutate.bluegreen.io"');
    expect(await image('shop-blue')).not.toBe('registry.example/shop:while-down');
  });

  it('after a restart the webhook works from the cluster alone', async () => {
    await wh.restart();
    const live = (await kubectlJson<{ spec: { selector: Record<string, string> } }>(['-n', ns.name, 'get', 'service', 'shop'])).spec.selector.slot;
    const [liveName, idleName] = live === 'blue' ? ['shop-blue', 'shop-green'] : ['shop-green', 'shop-blue'];
    const liveImage = await image(liveName);
    const res = await k('set', 'image', `deployment/${liveName}`, 'app=registry.example/shop:after-restart');
    expect(res.stderr).toContain(`image change redirected to ${idleName} (idle)`);
    await landed(idleName, 'registry.example/shop:after-restart');
    expect(await image(liveName)).toBe(liveImage);
  });
});

describe('malformed requests against the running process', () => {
  it('get a 400 with a message, and the process stays up', async () => {
    const cases: [string, string, number][] = [
      ['not JSON', '{', 400],
      ['empty', '', 400],
      ['array', '[]', 400],
      ['wrong apiVersion', JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'u' } }), 400],
      ['no uid', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: {} }), 400],
      [
        'a ConfigMap',
        JSON.stringify({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          request: {
            uid: 'u',
            operation: 'CREATE',
            kind: { group: '', version: 'v1', kind: 'ConfigMap' },
            resource: { group: '', version: 'v1', resource: 'configmaps' },
            object: { metadata: {} },
          },
        }),
        400,
      ],
    ];
    for (const [name, body, status] of cases) {
      const r = await wh.post('/validate', body);
      expect({ name, status: r.status }).toEqual({ name, status });
      expect(JSON.parse(r.body).response.status.message).toMatch(/malformed|handles/);
    }
    expect((await wh.get('/healthz')).status).toBe(200);
    expect(wh.pid()).toBeDefined();
  });
});
