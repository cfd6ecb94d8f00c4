// TLS for the webhook server: a mounted certificate (reloaded when its files
// change), or a CA and serving certificate generated at start with
// `selfsigned` (RSA 2048, SHA-256), optionally shared by all replicas through
// a Secret.
import { X509Certificate } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { generate } from 'selfsigned';
import { ApiError, type KubeClient } from '../kube/client.ts';
import type { Logger } from './logger.ts';

export interface CertPair {
  cert: string;
  key: string;
  /** PEM of the CA that signed cert (the caBundle for webhook configurations). */
  ca: string;
}

export interface SelfSignedOptions {
  dnsNames: string[];
  ipAddresses?: string[];
  days?: number;
}

export async function generateSelfSigned(o: SelfSignedOptions): Promise<CertPair> {
  const now = new Date();
  const until = new Date(now.getTime() + (o.days ?? 365) * 86_400_000);
  const notBefore = new Date(now.getTime() - 5 * 60_000);
  const ca = await generate([{ name: 'commonName', value: 'kube-bluegreen-ca' }], {
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate: notBefore,
    notAfterDate: until,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const altNames = [
    ...o.dnsNames.map((value) => ({ type: 2 as const, value })),
    ...(o.ipAddresses ?? []).map((ip) => ({ type: 7 as const, ip })),
  ];
  const serving = await generate([{ name: 'commonName', value: o.dnsNames[0] ?? 'kube-bluegreen-webhook' }], {
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate: notBefore,
    notAfterDate: until,
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  return { cert: serving.cert, key: serving.private, ca: ca.cert };
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
 * Self-signed, shared through a Secret: the first replica to start creates it, the
 * others (and restarts) load it. Create is atomic, so two replicas racing end up
 * with one CA.
 */
export async function sharedSelfSigned(
  client: KubeClient,
  namespace: string,
  secretName: string,
  o: SelfSignedOptions,
  log: Logger,
): Promise<CertPair> {
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`;
  const read = async (): Promise<CertPair | undefined> => {
    try {
      const s = await client.get<{ data?: Record<string, string> }>(`${path}/${encodeURIComponent(secretName)}`);
      const d = s.data ?? {};
      if (!d['tls.crt'] || !d['tls.key'] || !d['ca.crt']) return undefined;
      const dec = (v: string) => Buffer.from(v, 'base64').toString('utf8');
      const pair = { cert: dec(d['tls.crt']), key: dec(d['tls.key']), ca: dec(d['ca.crt']) };
      const left = new Date(new X509Certificate(pair.cert).validTo).getTime() - Date.now();
      return left > 30 * 86_400_000 ? pair : undefined;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return undefined;
      throw e;
    }
  };
  const existing = await read();
  if (existing) {
    log.info({ secret: `${namespace}/${secretName}` }, 'loaded the shared self-signed certificate');
    return existing;
  }
  const pair = await generateSelfSigned(o);
  const enc = (v: string) => Buffer.from(v).toString('base64');
  const body = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: secretName, namespace, labels: { 'app.kubernetes.io/name': 'kube-bluegreen' } },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': enc(pair.cert), 'tls.key': enc(pair.key), 'ca.crt': enc(pair.ca) },
  };
  try {
    await client.create(path, body);
    log.info({ secret: `${namespace}/${secretName}` }, 'generated a self-signed CA and serving certificate and stored them');
    return pair;
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 409) throw e;
    // Another replica won the race, or the stored pair is near expiry: take or replace it.
    const again = await read();
    if (again) return again;
    await client.request('PUT', `${path}/${encodeURIComponent(secretName)}`, { body });
    log.info({ secret: `${namespace}/${secretName}` }, 'replaced an expiring self-signed certificate');
    return pair;
  }
}
