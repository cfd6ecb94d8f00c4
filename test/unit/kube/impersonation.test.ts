// KubeClient's ConnectOptions.impersonate (what `kubectl bg --break-glass` connects with): the
// headers that reach an HTTPS server on loopback, in place of the kubeconfig's own impersonation,
// on plain requests and on watches; and none added without it.
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeClient } from '../../../src/kube/client.ts';
import type { ResolvedKubeconfig } from '../../../src/kube/kubeconfig.ts';
import { generateSelfSigned } from '../../../src/webhook/tls.ts';

let server: https.Server;
let ca = '';
let port = 0;
/** Every request's raw header lines (name, value pairs: repeated headers stay apart). */
const seen: { path: string; headers: [string, string][] }[] = [];

beforeAll(async () => {
  const pair = await generateSelfSigned({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  ca = pair.ca;
  server = https.createServer({ cert: pair.cert, key: pair.key }, (req, res) => {
    const raw = req.rawHeaders;
    const headers: [string, string][] = [];
    for (let i = 0; i < raw.length; i += 2) headers.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
    seen.push({ path: req.url ?? '', headers });
    res.setHeader('content-type', 'application/json');
    if ((req.url ?? '').includes('watch=true')) res.end(`${JSON.stringify({ type: 'ADDED', object: { metadata: { resourceVersion: '7' } } })}\n`);
    else res.end('{"kind":"Status"}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(() => server?.close());

function config(o: Partial<ResolvedKubeconfig> = {}): ResolvedKubeconfig {
  return {
    source: 'kubeconfig',
    files: [],
    context: 'c',
    cluster: 'c',
    user: 'u',
    server: `https://127.0.0.1:${port}`,
    namespace: 'default',
    tls: { ca: Buffer.from(ca), insecureSkipTLSVerify: false },
    auth: { type: 'token', token: 'alice-token' },
    clusterInfo: {},
    fallback: [],
    ...o,
  };
}

const impersonation = (h: [string, string][]) => h.filter(([k]) => k.startsWith('impersonate-'));

describe('KubeClient impersonate option', () => {
  it('sends Impersonate-User and one Impersonate-Group line per group, with the credentials unchanged', async () => {
    const c = new KubeClient(config(), { impersonate: { user: 'alice', groups: ['kube-bluegreen:break-glass', 'system:authenticated'], extra: {} } });
    await c.get('/api/v1/namespaces/default/services/shop');
    c.close();
    const h = seen.at(-1)!.headers;
    expect(impersonation(h)).toEqual([
      ['impersonate-user', 'alice'],
      ['impersonate-group', 'kube-bluegreen:break-glass'],
      ['impersonate-group', 'system:authenticated'],
    ]);
    expect(h).toContainEqual(['authorization', 'Bearer alice-token']);
  });

  it("replaces the kubeconfig's own impersonation (as, as-groups), not adds to it", async () => {
    const cfg = config({ impersonate: { user: 'bob', groups: ['devs'], extra: { scopes: ['x'] } } });
    const plain = new KubeClient(cfg);
    await plain.get('/version');
    plain.close();
    expect(impersonation(seen.at(-1)!.headers)).toEqual([
      ['impersonate-user', 'bob'],
      ['impersonate-group', 'devs'],
      ['impersonate-extra-scopes', 'x'],
    ]);
    const c = new KubeClient(cfg, { impersonate: { user: 'bob', groups: ['kube-bluegreen:break-glass', 'system:authenticated'], extra: {} } });
    await c.patch('/api/v1/namespaces/default/services/shop', { spec: {} }, 'merge');
    c.close();
    expect(impersonation(seen.at(-1)!.headers)).toEqual([
      ['impersonate-user', 'bob'],
      ['impersonate-group', 'kube-bluegreen:break-glass'],
      ['impersonate-group', 'system:authenticated'],
    ]);
  });

  it('on watches too', async () => {
    const c = new KubeClient(config(), { impersonate: { user: 'alice', groups: ['g'], extra: {} } });
    const rv = await c.watch('/apis/apps/v1/deployments', {}, () => {});
    c.close();
    expect(rv).toBe('7');
    expect(seen.at(-1)!.path).toContain('watch=true');
    expect(impersonation(seen.at(-1)!.headers)).toEqual([
      ['impersonate-user', 'alice'],
      ['impersonate-group', 'g'],
    ]);
  });

  it('without it, no impersonation header at all', async () => {
    const c = new KubeClient(config());
    await c.get('/version');
    c.close();
    expect(impersonation(seen.at(-1)!.headers)).toEqual([]);
  });
});
