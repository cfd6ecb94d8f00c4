// Self-signed TLS shared through a Secret, against the real apiserver: replicas
// racing to create it end up with one CA, and a serving certificate near its end
// is renewed under the same CA (so caBundle does not change).
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSelfSigned } from '../../src/webhook/tls.ts';
import { apply, createNamespace, kubectlJson, type TestNamespace } from './helpers/cluster.ts';
import { type RunningWebhook, startWebhook } from './helpers/webhook.ts';

let ns: TestNamespace;
const running: RunningWebhook[] = [];
const dec = (v: string) => Buffer.from(v, 'base64').toString('utf8');
const secret = (name: string) => kubectlJson<{ data: Record<string, string> }>(['-n', ns.name, 'get', 'secret', name]);
const start = async (secretName: string) => {
  const w = await startWebhook({ namespace: ns.name, extraArgs: ['--tls-secret', secretName, '--namespace', ns.name] });
  running.push(w);
  return w;
};
const servedCert = (port: number, ca: string) =>
  new Promise<string>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      resolve(s.getPeerX509Certificate()!.toString());
      s.end();
    });
    s.on('error', reject);
  });

beforeAll(async () => {
  ns = await createNamespace('tls-secret');
});
afterAll(async () => {
  for (const w of running) await w.stop();
  await ns?.cleanup();
});

describe('self-signed, shared through a Secret', () => {
  it('two replicas starting at once create one Secret and serve certificates of one CA', async () => {
    const [a, b] = await Promise.all([start('kbg-shared-tls'), start('kbg-shared-tls')]);
    const s = await secret('kbg-shared-tls');
    expect(Object.keys(s.data).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    expect(a.ca).toBe(dec(s.data['ca.crt']!));
    expect(b.ca).toBe(a.ca);
    // Both serve the stored certificate, which the shared CA verifies.
    const stored = new X509Certificate(dec(s.data['tls.crt']!));
    for (const w of [a, b]) expect(new X509Certificate(await servedCert(w.port, w.ca)).fingerprint256).toBe(stored.fingerprint256);
    expect(stored.verify(new X509Certificate(a.ca).publicKey)).toBe(true);
  }, 90_000);

  it('a serving certificate with 10 days left is renewed at start under the same CA', async () => {
    const old = await generateSelfSigned({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], days: 10 });
    const enc = (v: string) => Buffer.from(v).toString('base64');
    await apply({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'kbg-expiring-tls', namespace: ns.name },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': enc(old.cert), 'tls.key': enc(old.key), 'ca.crt': enc(old.ca), 'ca.key': enc(old.caKey!) },
    });
    const w = await start('kbg-expiring-tls');
    expect(w.ca).toBe(old.ca);
    const served = new X509Certificate(await servedCert(w.port, w.ca));
    expect(served.fingerprint256).not.toBe(new X509Certificate(old.cert).fingerprint256);
    const daysLeft = (new Date(served.validTo).getTime() - Date.now()) / 86_400_000;
    expect(daysLeft).toBeGreaterThan(300);
    const s = await secret('kbg-expiring-tls');
    expect(dec(s.data['ca.crt']!)).toBe(old.ca);
    expect(new X509Certificate(dec(s.data['tls.crt']!)).fingerprint256).toBe(served.fingerprint256);
  }, 90_000);
});
