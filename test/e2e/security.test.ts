// Security of the running webhook process, as an operator runs it (--log-level info):
// TLS 1.2+ only, no plaintext listener, nothing answered but its own paths, and a
// log that carries no certificate, key, token or whole object.
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { sampleApp } from '../fixtures/sample-app.ts';
import { applyApps, rolledOut } from './helpers/apps.ts';
import { clusterEnv, createNamespace, generateCA, issueCert, kubectl, kubectlJson, type TestNamespace } from './helpers/cluster.ts';
import { kubectlBg } from './helpers/plugin-cli.ts';
import { apiserverClientCert, type ClientCert, type RunningWebhook, startWebhook } from './helpers/webhook.ts';

let ns: TestNamespace;
let wh: RunningWebhook;
let caBundle = '';
/** The API server's client certificate: only a client holding it gets past the TLS handshake. */
let apiserver: ClientCert;

const k = (...args: string[]) => kubectl(['-n', ns.name, ...args]);
const wrongColour = '{"spec":{"selector":{"slot":"purple"}}}';

beforeAll(async () => {
  apiserver = apiserverClientCert();
  ns = await createNamespace('security');
  await applyApps(ns.name, sampleApp({ namespace: ns.name, replicas: 1 }));
  // At info level an allowed request logs nothing: the probe is a refused dry run that this
  // process logs (another webhook with the same hook names may be registered on the cluster).
  wh = await startWebhook({
    namespace: ns.name,
    logLevel: 'info',
    probe: async (logs) => {
      const r = await k('patch', 'service', 'shop', '--dry-run=server', '-p', wrongColour);
      return r.stderr.includes('denied the request') && logs().includes('slot=purple, a colour that does not exist');
    },
  });
  caBundle = (await kubectlJson<{ webhooks: { clientConfig: { caBundle: string } }[] }>(['get', 'mutatingwebhookconfiguration', wh.configName])).webhooks[0]!
    .clientConfig.caBundle;
});

afterAll(async () => {
  await wh?.stop();
  await ns?.cleanup();
});

type Handshake = { ok: true; protocol: string | null; authorized: boolean; raw: Buffer } | { ok: false; code: string; message: string };

/**
 * A TLS handshake. `settle`: wait a moment after it for the server to refuse the client's
 * certificate (TLS 1.3 says so after the client's Finished); a server closing the connection in
 * that moment refused it. Without it, done at the handshake (a server that closes at once is fine).
 */
function handshake(port: number, opts: tls.ConnectionOptions, client: ClientCert | null = apiserver, settle = true): Promise<Handshake> {
  return new Promise((res) => {
    let done = false;
    const finish = (h: Handshake) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      res(h);
    };
    let out: Handshake | undefined;
    const s = tls.connect({ host: '127.0.0.1', port, ...(client ?? {}), ...opts }, () => {
      out = { ok: true, protocol: s.getProtocol(), authorized: s.authorized, raw: s.getPeerCertificate().raw };
      if (!settle) {
        s.end();
        return finish(out);
      }
      // The server reads the client's Finished (and refuses its certificate) with the first bytes:
      // send a line, and read for a moment.
      s.write('\r\n');
      setTimeout(() => {
        s.end();
        finish(out!);
      }, 300);
    });
    s.on('data', () => {});
    const timer = setTimeout(() => {
      s.destroy();
      finish({ ok: false, code: 'TIMEOUT', message: 'handshake timed out' });
    }, 5_000);
    s.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, code: e.code ?? '', message: e.message }));
    s.on('close', () =>
      finish(
        out && !settle ? out : { ok: false, code: 'CLOSED', message: out ? 'closed by the server right after the handshake' : 'closed during the handshake' },
      ),
    );
  });
}

/** An HTTPS request with any method and a raw path; status, headers and body. */
function request(method: string, path: string, body?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((res, rej) => {
    const req = https.request(
      { host: '127.0.0.1', port: wh.port, method, path, ca: wh.ca, ...apiserver, headers: body ? { 'content-type': 'application/json' } : {} },
      (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => res({ status: r.statusCode ?? 0, headers: r.headers, body: Buffer.concat(chunks).toString('utf8') }));
        r.on('error', rej);
      },
    );
    req.on('error', rej);
    req.end(body);
  });
}

describe('TLS', () => {
  // TLS 1.0/1.1 need OpenSSL security level 0 on the client side: a control server that accepts
  // them shows the client really offers them, so the webhook's refusal is the webhook's.
  const legacy = { ciphers: 'DEFAULT@SECLEVEL=0', minVersion: 'TLSv1' as const };

  it('refuses TLS 1.0 and 1.1 (which a permissive server accepts from the same client), and speaks TLS 1.2 and 1.3', async () => {
    const ca = await generateCA('kube-bluegreen-security-test-ca');
    const leaf = await issueCert(ca, { commonName: 'control', ipAddresses: ['127.0.0.1'], usage: 'server' });
    const control = tls.createServer({ key: leaf.keyPem, cert: leaf.certPem, ...legacy }, (s) => s.end());
    await new Promise<void>((r) => control.listen(0, '127.0.0.1', r));
    try {
      const controlPort = (control.address() as net.AddressInfo).port;
      for (const v of ['TLSv1', 'TLSv1.1'] as const) {
        const ok = await handshake(controlPort, { ...legacy, maxVersion: v, ca: ca.certPem }, null, false);
        expect({ v, ok: ok.ok, protocol: ok.ok ? ok.protocol : ok.message }).toEqual({ v, ok: true, protocol: v });
        const refused = await handshake(wh.port, { ...legacy, maxVersion: v, ca: wh.ca });
        expect(refused.ok).toBe(false);
        // The server's protocol_version alert, not a client-side failure to offer the version.
        expect({ v, code: refused.ok ? '' : refused.code }).toEqual({ v, code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
      }
    } finally {
      control.close();
    }
    for (const v of ['TLSv1.2', 'TLSv1.3'] as const) {
      const h = await handshake(wh.port, { minVersion: v, maxVersion: v, ca: wh.ca });
      expect({ v, ok: h.ok, protocol: h.ok ? h.protocol : h.message, authorized: h.ok && h.authorized }).toEqual({
        v,
        ok: true,
        protocol: v,
        authorized: true,
      });
    }
  });

  it("has no plaintext admission listener: plain HTTP gets no HTTP answer; the only other port is the probes' (health and metrics only)", async () => {
    // Plain HTTP on the port.
    const answer = await new Promise<string>((res) => {
      const s = net.connect(wh.port, '127.0.0.1', () => s.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'));
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString('latin1')));
      s.on('close', () => res(got));
      s.on('error', () => res(got));
      s.setTimeout(3_000, () => s.destroy());
    });
    expect(answer.startsWith('HTTP/')).toBe(false);
    expect(answer).not.toContain('ok');
    await expect(
      new Promise((res, rej) => {
        const req = http.get({ host: '127.0.0.1', port: wh.port, path: '/healthz', timeout: 3_000 }, res);
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', rej);
      }),
    ).rejects.toThrow();

    // Every TCP socket the process listens on.
    const pid = wh.pid()!;
    const inodes = new Set(
      readdirSync(`/proc/${pid}/fd`)
        .map((fd) => {
          try {
            return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
          } catch {
            return undefined;
          }
        })
        .filter((x): x is string => !!x),
    );
    const listening: string[] = [];
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
      for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
        const f = line.trim().split(/\s+/);
        if (f.length < 10 || f[3] !== '0A' || !inodes.has(f[9]!)) continue;
        listening.push(`${table.endsWith('6') ? 'tcp6' : 'tcp'}:${parseInt(f[1]!.split(':')[1]!, 16)}`);
      }
    }
    expect(listening.sort()).toEqual([`tcp:${wh.port}`, `tcp:${wh.probePort}`].sort());
    // The probe port answers health and metrics, never an admission review.
    const probe = (method: string, path: string, body?: string) =>
      new Promise<number>((res, rej) => {
        const req = http.request({ host: '127.0.0.1', port: wh.probePort, method, path, headers: body ? { 'content-type': 'application/json' } : {} }, (r) => {
          r.resume();
          res(r.statusCode ?? 0);
        });
        req.on('error', rej);
        req.end(body);
      });
    expect(await probe('GET', '/healthz')).toBe(200);
    expect(await probe('GET', '/readyz')).toBe(200);
    expect(await probe('GET', '/metrics')).toBe(200);
    expect(await probe('POST', '/mutate', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }))).toBe(405);
    expect(await probe('POST', '/validate', '{}')).toBe(405);
  });
});

describe('only the API server may send reviews: a forged one is refused at TLS', () => {
  const forged = () =>
    JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'forged',
        operation: 'CONNECT',
        kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
        resource: { group: 'apps', version: 'v1', resource: 'deployments' },
      },
    });
  it.each([
    { name: 'no client certificate', client: async () => undefined },
    {
      name: 'a client certificate from another CA, with the right name',
      client: async () => {
        const ca = await generateCA('mallory-ca');
        const c = await issueCert(ca, { commonName: 'kube-apiserver-webhook-client', usage: 'client' });
        return { cert: c.certPem, key: c.keyPem };
      },
    },
  ])('$name: the handshake fails, no HTTP is spoken', async ({ client }) => {
    const c = await client();
    const h = await handshake(wh.port, { ca: wh.ca }, c ?? null);
    expect(h.ok, JSON.stringify(h)).toBe(false);
    await expect(wh.postAs(c, '/mutate', forged())).rejects.toThrow(/certificate|alert|socket hang up|ECONNRESET|EPIPE/i);
  });

  it("a certificate from the cluster's CA but not the API server's name (the admin's): 403, not decided", async () => {
    const env = clusterEnv();
    const kc = parseYaml(readFileSync(env.kubeconfig, 'utf8')) as { users: { user: Record<string, string> }[] };
    const admin = {
      cert: Buffer.from(kc.users[0]!.user['client-certificate-data']!, 'base64').toString(),
      key: Buffer.from(kc.users[0]!.user['client-key-data']!, 'base64').toString(),
    };
    const r = await wh.postAs(admin, '/mutate', forged());
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body).response.status.message).toMatch(
      /^only the API server may send admission reviews here: client certificate "kubernetes-admin" is not one of the allowed names/,
    );
  });
});

describe('paths', () => {
  it.each([
    ['GET', '/'],
    ['GET', '/index.html'],
    ['GET', '/admin'],
    ['GET', '/debug/pprof/'],
    ['GET', '/.git/config'],
    ['GET', '/package.json'],
    ['GET', '/src/webhook/main.ts'],
    ['GET', '/node_modules/'],
    ['GET', '/../../../../etc/passwd'],
    ['GET', '/%2e%2e/%2e%2e/%2e%2e/etc/passwd'],
    ['GET', '/static/../../etc/passwd'],
    ['POST', '/'],
    ['POST', '/admit'],
    ['POST', '/mutate/extra'],
    ['POST', '/convert'],
    ['PUT', '/healthz'],
    ['DELETE', '/metrics'],
    ['OPTIONS', '/'],
    ['TRACE', '/'],
  ])('%s %s: 404, and nothing but the refusal', async (method, path) => {
    const r = await request(method, path, method === 'POST' ? '{}' : undefined);
    expect(r.status).toBe(404);
    expect(r.headers['x-powered-by']).toBeUndefined();
    for (const leak of ['Index of', '<a href', 'root:', '"name": "kube-bluegreen"', 'import ', 'TRACE /']) expect(r.body).not.toContain(leak);
  });

  it.each([
    ['GET', '/mutate'],
    ['GET', '/validate'],
    ['PUT', '/mutate'],
    ['DELETE', '/validate'],
    ['PATCH', '/mutate'],
  ])('%s %s: 405, POST only', async (method, path) => {
    const r = await request(method, path);
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('POST');
  });
});

describe('the log at info level', () => {
  it(
    'carries no certificate, key, token or whole object through a session of real traffic; every line is JSON with level, time and msg',
    { timeout: 90_000 },
    async () => {
      const secretEnv = `s3cr3t-${randomBytes(12).toString('hex')}`;
      const marker = `whole-object-${randomBytes(6).toString('hex')}`;
      const served = await handshake(wh.port, { ca: wh.ca });
      expect(served.ok).toBe(true);
      const servedB64 = served.ok ? served.raw.toString('base64') : '';

      // Redirect, dry run, a secret-looking env value redirected, denials, a switch, malformed and
      // unexpected requests straight to the server.
      let r = await k('set', 'image', 'deployment/shop-blue', 'app=registry.example/shop:v2');
      expect(r.stderr).toContain('image change redirected to shop-green (idle)');
      r = await k('set', 'image', 'deployment/shop-blue', 'app=registry.example/shop:v3', '--dry-run=server');
      expect(r.stderr).toContain('image change redirected to shop-green (idle)');
      r = await k('set', 'env', 'deployment/shop-blue', `API_TOKEN=${secretEnv}`);
      expect(r.stderr).toContain('pod template change redirected to shop-green (idle)');
      r = await k('annotate', 'deployment', 'shop-blue', `example.com/note=${marker}`);
      expect(r.code).toBe(0);
      r = await k('scale', 'deployment/shop-blue', '--replicas=0');
      expect(r.stderr).toContain('denied the request');
      r = await k('delete', 'deployment', 'shop-blue', '--wait=false');
      expect(r.stderr).toContain('denied the request');
      r = await k('patch', 'service', 'shop', '-p', wrongColour);
      expect(r.stderr).toContain('denied the request');
      await rolledOut(ns.name, ['shop-green']);
      const sw = await kubectlBg(ns.name, ['switch', 'shop']);
      expect(sw.code, sw.stderr).toBe(0);
      expect((await request('POST', '/validate', '{')).status).toBe(400);
      const review = (kind: string, object: unknown) =>
        JSON.stringify({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          request: {
            uid: randomBytes(8).toString('hex'),
            operation: 'CREATE',
            kind: { group: kind === 'Secret' ? '' : 'apps', version: 'v1', kind },
            resource: { group: kind === 'Secret' ? '' : 'apps', version: 'v1', resource: kind === 'Secret' ? 'secrets' : 'deployments' },
            namespace: ns.name,
            name: 'x',
            userInfo: { username: 'mallory', extra: { token: [secretEnv] } },
            object,
          },
        });
      const secret = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'x', annotations: { marker } },
        data: { token: Buffer.from(secretEnv).toString('base64') },
      };
      expect((await request('POST', '/validate', review('Secret', secret))).status).toBe(400);
      const dep = {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'x', labels: { 'bluegreen.io/app': 'nope' }, annotations: { marker } },
        spec: {},
      };
      expect((await request('POST', '/mutate', review('Deployment', dep))).status).toBe(200);

      // Stop it (SIGTERM) so the log is whole, shutdown included.
      await wh.stop();
      const log = wh.logs();
      const lines = log.split('\n').filter((l) => l.trim() !== '');
      expect(lines.length).toBeGreaterThan(5);

      const kubeconfig = parseYaml(readFileSync(clusterEnv().kubeconfig, 'utf8')) as { users?: { user?: Record<string, string> }[] };
      const credentials = (kubeconfig.users ?? []).flatMap((u) =>
        ['client-key-data', 'client-certificate-data', 'token'].map((f) => [f, u.user?.[f]] as const).filter((x): x is readonly [string, string] => !!x[1]),
      );
      expect(credentials.some(([f]) => f === 'client-key-data')).toBe(true);
      const caPemBody = wh.ca.split('\n').find((l) => l && !l.startsWith('-----'))!;
      const forbidden: [string, string][] = [
        ['a PEM certificate', 'BEGIN CERTIFICATE'],
        ['a PEM private key', 'PRIVATE KEY'],
        ['the caBundle', caBundle],
        ['part of the caBundle', caBundle.slice(100, 160)],
        ['the CA certificate', caPemBody],
        ['the serving certificate', servedB64.slice(0, 60)],
        ...credentials.map(([f, v]) => [`the kubeconfig's ${f}`, v.slice(80, 140)] as [string, string]),
        ['managedFields (a whole object)', 'managedFields'],
        ['a spec (a whole object)', '"spec":'],
        ['an annotation only found in whole objects', marker],
        ['a secret env value', secretEnv],
      ];
      for (const [what, s] of forbidden) {
        expect(s.length, what).toBeGreaterThan(5); // never an empty or trivial needle
        expect(log.includes(s), `the log contains ${what}`).toBe(false);
      }

      const bad: string[] = [];
      const levels = new Set<string>();
      for (const l of lines) {
        let j: { level?: unknown; time?: unknown; msg?: unknown };
        try {
          j = JSON.parse(l);
        } catch {
          bad.push(`not JSON: ${l.slice(0, 200)}`);
          continue;
        }
        if (typeof j.level !== 'string' || !['info', 'warn', 'error', 'fatal'].includes(j.level))
          bad.push(`level ${JSON.stringify(j.level)}: ${l.slice(0, 200)}`);
        else levels.add(j.level);
        if (typeof j.time !== 'string' || Number.isNaN(Date.parse(j.time))) bad.push(`time ${JSON.stringify(j.time)}: ${l.slice(0, 200)}`);
        if (typeof j.msg !== 'string' || !j.msg) bad.push(`msg ${JSON.stringify(j.msg)}: ${l.slice(0, 200)}`);
      }
      expect(bad).toEqual([]);
      // The session is in the log, by decision.
      expect(log).toContain('"outcome":"redirected"');
      expect(log).toContain('"outcome":"denied"');
      expect(log).toContain('serving certificate loaded');
      expect(log).toContain('"msg":"stopped"');
    },
  );
});
