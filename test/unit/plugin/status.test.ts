// kubectl bg status, driven through the CLI against the fake cluster.
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import type { AppStatus } from '../../../src/core/status.ts';
import { CLEAR } from '../../../plugin/src/commands/status.ts';
import { FakeCluster } from './fake-cluster.ts';
import { dep, harness, seedShop, svc } from './harness.ts';

const TREE_ROLLING_OUT = `Name:        shop
Namespace:   default
Phase:       idle-rolling-out
Message:     shop-green is still rolling out (1 of 3 pods updated, 3 running)
Live:        blue
Last switch: <none>

shop
├── Service/shop            active         selects slot=blue
├── Deployment/shop-blue    blue (live)    3/3 ready, 3 up-to-date, 3 available
│   └── app=registry.example/shop:v1
└── Deployment/shop-green   green (idle)   1/3 ready, 1 up-to-date, 1 available
    └── app=registry.example/shop:v2
`;

function rollingOut() {
  const h = harness();
  seedShop(h.cluster, { green: { ready: 1, updated: 1 } });
  return h;
}

describe('status APP', () => {
  it('prints the tree of one app, exit 0', async () => {
    const h = rollingOut();
    expect(await h.run('status', 'shop')).toEqual({ code: 0, out: TREE_ROLLING_OUT, err: '' });
  });

  it.each([
    ['not a TTY', { isTTY: false }, false],
    ['a TTY', { isTTY: true }, true],
    ['a TTY with NO_COLOR', { isTTY: true, env: { NO_COLOR: '1' } }, false],
  ])('on %s colour is %s', async (_n, o, coloured) => {
    const h = harness(o);
    seedShop(h.cluster, { green: { ready: 1, updated: 1 } });
    const r = await h.run('status', 'shop');
    expect(r.out.includes('\x1b[')).toBe(coloured);
    expect(r.out.replace(/\x1b\[[0-9;]*m/g, '')).toBe(TREE_ROLLING_OUT);
  });

  it('--no-color turns colour off on a TTY', async () => {
    const h = harness({ isTTY: true });
    seedShop(h.cluster, { green: { ready: 1, updated: 1 } });
    expect((await h.run('status', 'shop', '--no-color')).out).toBe(TREE_ROLLING_OUT);
  });

  it.each([
    ['status', 'nope'],
    ['status', 'nope', '-o', 'json'],
    ['status', 'nope', '--watch'],
  ])('%s %s ...: an app that is not enrolled says so, exit 1', async (...argv) => {
    const h = rollingOut();
    expect(await h.run(...argv)).toEqual({
      code: 1,
      out: '',
      err: `error: app nope is not enrolled in namespace default: no Deployment or Service there is labelled bluegreen.io/app=nope
hint: enrol it with 'kubectl bg init nope --from deployment/<name>'
`,
    });
  });

  it('-n looks in that namespace; messages name it', async () => {
    const h = rollingOut();
    const r = await h.run('status', 'shop', '-n', 'prod');
    expect(r.code).toBe(1);
    expect(r.err).toContain('app shop is not enrolled in namespace prod');
    expect(r.err).toContain("'kubectl bg init shop -n prod --from deployment/<name>'");
  });

  it('-o json prints the AppStatus document', async () => {
    const h = rollingOut();
    const r = await h.run('status', 'shop', '-o', 'json');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out) as AppStatus;
    expect(Object.keys(doc).sort()).toEqual(
      [
        'activeService',
        'app',
        'checks',
        'colours',
        'declaredBy',
        'hpaWarning',
        'hpas',
        'idle',
        'lastChange',
        'lastSwitch',
        'live',
        'message',
        'namespace',
        'pending',
        'phase',
        'previewServices',
        'problems',
        'scaleDownAt',
        'slotLabel',
      ].sort(),
    );
    expect(doc).toMatchObject({
      app: 'shop',
      namespace: 'default',
      slotLabel: 'slot',
      activeService: 'shop',
      previewServices: [],
      live: 'blue',
      idle: 'green',
      phase: 'idle-rolling-out',
      lastSwitch: null,
      scaleDownAt: null,
      pending: [],
      lastChange: null,
      problems: [],
    });
    expect(doc.colours.map((c) => [c.colour, c.deployment, c.role, c.images, c.desired, c.ready, c.available, c.updated])).toEqual([
      ['blue', 'shop-blue', 'live', ['app=registry.example/shop:v1'], 3, 3, 3, 3],
      ['green', 'shop-green', 'idle', ['app=registry.example/shop:v2'], 3, 1, 1, 1],
    ]);
    expect(doc.colours[0]!.template).toMatch(/^[0-9a-f]{12}$/);
  });

  it('-o yaml prints the same document as YAML', async () => {
    const h = rollingOut();
    const json = JSON.parse((await h.run('status', 'shop', '-o', 'json')).out);
    expect(YAML.parse((await h.run('status', 'shop', '-o', 'yaml')).out)).toEqual(json);
  });
});

describe('status (all apps)', () => {
  function twoNamespaces() {
    const h = harness();
    seedShop(h.cluster);
    h.cluster.put('deployments', {
      ...dep('web-blue', { app: 'web', colour: 'blue', replicas: 2, image: 'reg/web:1' }),
      metadata: { ...dep('web-blue', { app: 'web', colour: 'blue' }).metadata, namespace: 'prod' },
    });
    h.cluster.put('services', { ...svc('web', { app: 'web' }), metadata: { ...svc('web', { app: 'web' }).metadata, namespace: 'prod' } });
    h.cluster.tick();
    return h;
  }

  it.each([
    [
      ['status'],
      `APP    PHASE             LIVE   BLUE                           GREEN                          PREVIEW   LAST SWITCH
shop   ready-to-switch   blue   3/3 registry.example/shop:v1   3/3 registry.example/shop:v2   <none>    <none>
`,
    ],
    [
      ['status', '-A'],
      `NAMESPACE   APP    PHASE             LIVE   BLUE                           GREEN                          PREVIEW   LAST SWITCH
default     shop   ready-to-switch   blue   3/3 registry.example/shop:v1   3/3 registry.example/shop:v2   <none>    <none>
prod        web    stable            blue   2/2 reg/web:1                  -                              <none>    <none>
`,
    ],
    [
      ['status', '-n', 'prod'],
      `APP   PHASE    LIVE   BLUE            GREEN   PREVIEW   LAST SWITCH
web   stable   blue   2/2 reg/web:1   -       <none>    <none>
`,
    ],
  ])('%j', async (argv, expected) => {
    const h = twoNamespaces();
    expect(await h.run(...argv)).toEqual({ code: 0, out: expected, err: '' });
  });

  it('-o json prints {items: AppStatus[]}', async () => {
    const h = twoNamespaces();
    const doc = JSON.parse((await h.run('status', '-A', '-o', 'json')).out) as { items: AppStatus[] };
    expect(doc.items.map((i) => `${i.namespace}/${i.app}:${i.phase}`)).toEqual(['default/shop:ready-to-switch', 'prod/web:stable']);
  });

  it('no apps: a notice on stderr, exit 0; {items: []} with -o json', async () => {
    const h = harness();
    expect(await h.run('status')).toEqual({ code: 0, out: '', err: 'No blue-green apps found in default namespace.\n' });
    expect(await h.run('status', '-A')).toEqual({ code: 0, out: '', err: 'No blue-green apps found.\n' });
    expect(await h.run('status', '-o', 'json')).toEqual({ code: 0, out: '{\n  "items": []\n}\n', err: '' });
  });

  it('the namespace comes from the kubeconfig context when -n is not given', async () => {
    const h = harness({ cluster: new FakeCluster({ namespace: 'prod' }) });
    const r = await h.run('status', 'shop', '--kubeconfig', '/tmp/kc', '--context', 'ctx1');
    expect(r.err).toContain('not enrolled in namespace prod');
    expect(h.connects).toEqual([{ kubeconfig: '/tmp/kc', context: 'ctx1' }]);
  });
});

describe('status --watch', () => {
  it('redraws only when the text changes (TTY: clear and redraw)', async () => {
    const h = harness({
      isTTY: true,
      abortAfterSleeps: 4,
      onSleep: (n) => {
        if (n === 2) h.cluster.stuck.delete('shop-green'); // green finishes rolling out
      },
    });
    seedShop(h.cluster, { green: { ready: 1, updated: 1 } });
    const r = await h.run('status', 'shop', '--watch', '--no-color');
    expect(r.code).toBe(0);
    const frames = r.out.split(CLEAR).slice(1);
    expect(frames).toHaveLength(2);
    expect(frames[0]).toBe(TREE_ROLLING_OUT);
    expect(frames[1]).toContain('Phase:       ready-to-switch');
    expect(h.sleeps).toBe(4);
  });

  it('off a terminal, each change is printed after a blank line; nothing is repeated', async () => {
    const h = harness({
      abortAfterSleeps: 3,
      onSleep: (n) => {
        if (n === 1) h.cluster.stuck.delete('shop-green');
      },
    });
    seedShop(h.cluster, { green: { ready: 1, updated: 1 } });
    const r = await h.run('status', '-w');
    expect(r.out).toBe(`APP    PHASE              LIVE   BLUE                           GREEN                          PREVIEW   LAST SWITCH
shop   idle-rolling-out   blue   3/3 registry.example/shop:v1   1/3 registry.example/shop:v2   <none>    <none>

APP    PHASE             LIVE   BLUE                           GREEN                          PREVIEW   LAST SWITCH
shop   ready-to-switch   blue   3/3 registry.example/shop:v1   3/3 registry.example/shop:v2   <none>    <none>
`);
  });

  it('-o json --watch prints one document per change', async () => {
    const h = harness({ abortAfterSleeps: 3, onSleep: (n) => n === 1 && h.cluster.stuck.delete('shop-green') });
    seedShop(h.cluster, { green: { ready: 1, updated: 1 } });
    const r = await h.run('status', 'shop', '-w', '-o', 'json');
    const docs = r.out.split(/\n(?=\{)/).map((d) => JSON.parse(d) as AppStatus);
    expect(docs.map((d) => d.phase)).toEqual(['idle-rolling-out', 'ready-to-switch']);
  });
});

describe('status usage errors (exit 64)', () => {
  it.each([
    [['status', '-o', 'xml'], 'error: invalid value "xml" for -o/--output: use json, yaml, wide\n'],
    [['status', 'shop', '-A'], 'error: an app name and -A/--all-namespaces cannot be combined\n'],
    [['status', '--interval', 'soon', '-w'], 'error: invalid value "soon" for --interval: use a duration such as 90s, 5m or 1h30m\n'],
    [['status', '--bogus'], "error: unknown option '--bogus'\n(add --help for usage)\n"],
    [['status', 'a', 'b'], "error: too many arguments for 'status'. Expected 1 argument but got 2: a, b.\n(add --help for usage)\n"],
  ])('%j', async (argv, err) => {
    const h = rollingOut();
    expect(await h.run(...argv)).toEqual({ code: 64, out: '', err });
  });
});
