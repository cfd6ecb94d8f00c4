// TLS for the webhook server: a mounted certificate (reloaded when its files
// change), or a CA and serving certificate generated at start with
// `selfsigned` (RSA 2048, SHA-256), optionally shared by all replicas through
// a Secret.
import { X509Certificate } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { generate } from 'selfsigned';
import { isStatus, type KubeClient } from '../kube/client.ts';
import { retryOnConflict } from '../kube/retry.ts';
import type { Logger } from './logger.ts';

export interface CertPair {
  cert: string;
  key: string;
  /** PEM of the CA that signed cert (the caBundle for webhook configurations). */
  ca: string;
  /** The CA's private key, when we hold it (self-signed): renewals re-sign with the same CA. */
  caKey?: string;
}

/** The CA lives long; serving certificates are renewed under it, so caBundle never changes on renewal. */
export const CA_DAYS = 3650;
export const SERVING_DAYS = 365;
/** Renew a serving certificate with less than this left. */
export const RENEW_BEFORE_DAYS = 30;

export interface SelfSignedOptions {
  dnsNames: string[];
  ipAddresses?: string[];
  days?: number;
}

function daysLeft(pem: string, now = Date.now()): number {
  return (new Date(new X509Certificate(pem).validTo).getTime() - now) / 86_400_000;
}

/**
 * A serving certificate for o's names, signed by `ca` when given (a renewal), else by a new CA
 * valid CA_DAYS. RSA 2048, SHA-256.
 */
export async function generateSelfSigned(o: SelfSignedOptions, ca?: { cert: string; key: string }): Promise<CertPair> {
  const now = new Date();
  const until = new Date(now.getTime() + (o.days ?? SERVING_DAYS) * 86_400_000);
  const notBefore = new Date(now.getTime() - 5 * 60_000);
  const issuer: { cert: string; key: string } =
    ca ??
    (await generate([{ name: 'commonName', value: `kube-bluegreen-ca-${now.toISOString().slice(0, 10)}` }], {
      keySize: 2048,
      algorithm: 'sha256',
      notBeforeDate: notBefore,
      notAfterDate: new Date(now.getTime() + CA_DAYS * 86_400_000),
      extensions: [
        { name: 'basicConstraints', cA: true, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
      ],
    }).then((g) => ({ cert: g.cert, key: g.private })));
  const altNames = [...o.dnsNames.map((value) => ({ type: 2 as const, value })), ...(o.ipAddresses ?? []).map((ip) => ({ type: 7 as const, ip }))];
  const serving = await generate([{ name: 'commonName', value: o.dnsNames[0] ?? 'kube-bluegreen-webhook' }], {
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate: notBefore,
    notAfterDate: until,
    ca: { key: issuer.key, cert: issuer.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  return { cert: serving.cert, key: serving.private, ca: issuer.cert, caKey: issuer.key };
}

export function certSummary(pem: string): { subject: string; notAfter: string; fingerprint256: string } {
  const x = new X509Certificate(pem);
  return { subject: x.subject, notAfter: x.validTo, fingerprint256: x.fingerprint256 };
}

/** Loads a mounted pair and calls onChange with the new pair whenever either file changes (kubelet swaps symlinks). */
export function watchCertFiles(
  certFile: string,
  keyFile: string,
  caFile: string | undefined,
  onChange: (p: CertPair) => void,
  log: Logger,
): { initial: CertPair; close(): void } {
  const load = (): CertPair => {
    const cert = readFileSync(certFile, 'utf8');
    const key = readFileSync(keyFile, 'utf8');
    const ca = caFile ? readFileSync(caFile, 'utf8') : cert;
    new X509Certificate(cert); // throws on a broken certificate
    return { cert, key, ca };
  };
  const initial = load();
  let timer: NodeJS.Timeout | undefined;
  const reload = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      try {
        const p = load();
        onChange(p);
        log.info({ cert: undefined, certificate: certSummary(p.cert) }, 'reloaded serving certificate');
      } catch (e) {
        log.error({ err: (e as Error).message }, 'certificate files changed but could not be loaded; keeping the previous certificate');
      }
    }, 200);
  };
  const watchers: FSWatcher[] = [];
  const dirs = new Set([certFile, keyFile].map((f) => f.replace(/\/[^/]*$/, '') || '.'));
  for (const d of dirs) watchers.push(watch(d, reload));
  return {
    initial,
    close: () => {
      clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  };
}

/**
 * Self-signed, shared through a Secret (tls.crt, tls.key, ca.crt, ca.key): the first replica to
 * start creates it, the others load it. Create is atomic, so two replicas racing end up with one
 * CA. Called again periodically by every replica: a serving certificate near its end is renewed
 * under the same CA (caBundle unchanged, so replicas still serving the old one stay trusted), and
 * a renewal made by another replica is picked up.
 */
export async function sharedSelfSigned(client: KubeClient, namespace: string, secretName: string, o: SelfSignedOptions, log: Logger): Promise<CertPair> {
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`;
  const enc = (v: string) => Buffer.from(v).toString('base64');
  const dec = (v: string) => Buffer.from(v, 'base64').toString('utf8');
  const body = (p: CertPair, resourceVersion?: string) => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: secretName, namespace, labels: { 'app.kubernetes.io/name': 'kube-bluegreen' }, ...(resourceVersion ? { resourceVersion } : {}) },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': enc(p.cert), 'tls.key': enc(p.key), 'ca.crt': enc(p.ca), ...(p.caKey ? { 'ca.key': enc(p.caKey) } : {}) },
  });
  return retryOnConflict(
    async () => {
      let stored: { metadata: { resourceVersion?: string }; data?: Record<string, string> } | undefined;
      try {
        stored = await client.get(`${path}/${encodeURIComponent(secretName)}`);
      } catch (e) {
        if (!isStatus(e, 404)) throw e;
      }
      const d = stored?.data ?? {};
      if (stored && d['tls.crt'] && d['tls.key'] && d['ca.crt']) {
        const pair: CertPair = { cert: dec(d['tls.crt']), key: dec(d['tls.key']), ca: dec(d['ca.crt']), ...(d['ca.key'] ? { caKey: dec(d['ca.key']) } : {}) };
        if (daysLeft(pair.cert) > RENEW_BEFORE_DAYS) return pair;
        // Renew: under the same CA while it has years left, else (or without its key) under a new one.
        const keepCa = pair.caKey && daysLeft(pair.ca) > SERVING_DAYS ? { cert: pair.ca, key: pair.caKey } : undefined;
        const renewed = await generateSelfSigned(o, keepCa);
        // 409: another replica renewed it: read theirs.
        await client.request('PUT', `${path}/${encodeURIComponent(secretName)}`, { body: body(renewed, stored.metadata.resourceVersion) });
        log.info({ secret: `${namespace}/${secretName}`, sameCa: !!keepCa }, 'renewed the shared serving certificate');
        return renewed;
      }
      const pair = await generateSelfSigned(o);
      // 409: another replica won the race: load its pair.
      if (stored) await client.request('PUT', `${path}/${encodeURIComponent(secretName)}`, { body: body(pair, stored.metadata.resourceVersion) });
      else await client.create(path, body(pair));
      log.info({ secret: `${namespace}/${secretName}` }, 'generated a self-signed CA and serving certificate and stored them');
      return pair;
    },
    {
      exhausted: () => {
        throw new Error(`Secret ${namespace}/${secretName} kept changing while reading the shared certificate`);
      },
    },
  );
}
