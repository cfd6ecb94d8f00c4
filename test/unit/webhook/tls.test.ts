import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/webhook/logger.ts';
import { CA_DAYS, type CertPair, certSummary, generateSelfSigned, SERVING_DAYS, watchCertFiles } from '../../../src/webhook/tls.ts';

/** Polls until cond() holds; fails after timeoutMs. */
async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

const DNS = ['kube-bluegreen.kbg-system.svc', 'kube-bluegreen.kbg-system.svc.cluster.local', 'localhost'];
let pair: CertPair;
let other: CertPair;
let short: CertPair;
let startedAt: number;

beforeAll(async () => {
  startedAt = Date.now();
  [pair, other, short] = await Promise.all([
    generateSelfSigned({ dnsNames: DNS, ipAddresses: ['127.0.0.1', '::1'] }),
    generateSelfSigned({ dnsNames: ['other'] }),
    generateSelfSigned({ dnsNames: ['short'], days: 30 }),
  ]);
}, 60_000);

describe('generateSelfSigned', () => {
  it('the CA is a CA, self-signed', () => {
    const ca = new X509Certificate(pair.ca);
    expect(ca.ca).toBe(true);
    expect(ca.subject).toMatch(/^CN=kube-bluegreen-ca-\d{4}-\d{2}-\d{2}$/);
    expect(ca.verify(ca.publicKey)).toBe(true);
    expect(ca.checkIssued(ca)).toBe(true);
  });

  it('the serving certificate is not a CA and is signed by the CA', () => {
    const ca = new X509Certificate(pair.ca);
    const cert = new X509Certificate(pair.cert);
    expect(cert.ca).toBe(false);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.issuer).toBe(ca.subject);
  });

  it('the CA lasts CA_DAYS and the serving certificate SERVING_DAYS; the pair carries the CA key', () => {
    const days = (pem: string) => (new Date(new X509Certificate(pem).validTo).getTime() - startedAt) / 86_400_000;
    expect(Math.round(days(pair.ca))).toBe(CA_DAYS);
    expect(Math.round(days(pair.cert))).toBe(SERVING_DAYS);
    expect(pair.caKey).toMatch(/BEGIN PRIVATE KEY/);
  });

  it('a renewal under the same CA: a new serving key and certificate, the same CA (caBundle unchanged)', async () => {
    const renewed = await generateSelfSigned({ dnsNames: DNS }, { cert: pair.ca, key: pair.caKey! });
    expect(renewed.ca).toBe(pair.ca);
    expect(renewed.caKey).toBe(pair.caKey);
    expect(renewed.key).not.toBe(pair.key);
    const cert = new X509Certificate(renewed.cert);
    expect(cert.verify(new X509Certificate(pair.ca).publicKey)).toBe(true);
    expect(cert.fingerprint256).not.toBe(new X509Certificate(pair.cert).fingerprint256);
  }, 30_000);

  it('is not signed by another generated CA', () => {
    const cert = new X509Certificate(pair.cert);
    const foreign = new X509Certificate(other.ca);
    expect(cert.verify(foreign.publicKey)).toBe(false);
    // (CAs generated the same day have the same subject, so a name check alone cannot tell them apart.)
    expect(foreign.subject).toBe(new X509Certificate(pair.ca).subject);
  });

  it('names every DNS name and IP address as a SAN, the first DNS name as CN', () => {
    const cert = new X509Certificate(pair.cert);
    expect(cert.subject).toBe(`CN=${DNS[0]}`);
    expect(cert.subjectAltName).toBe(
      'DNS:kube-bluegreen.kbg-system.svc, DNS:kube-bluegreen.kbg-system.svc.cluster.local, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
    );
    for (const d of DNS) expect(cert.checkHost(d)).toBe(d);
    expect(cert.checkHost('evil.example')).toBeUndefined();
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkIP('10.0.0.1')).toBeUndefined();
  });

  it.each([
    { name: 'CA', pem: () => pair.ca },
    { name: 'serving certificate', pem: () => pair.cert },
  ])('$name: sha256WithRSAEncryption, RSA key of at least 2048 bits', ({ pem }) => {
    const x = new X509Certificate(pem());
    expect(x.signatureAlgorithm).toBe('sha256WithRSAEncryption');
    expect(x.publicKey.asymmetricKeyType).toBe('rsa');
    expect(x.publicKey.asymmetricKeyDetails!.modulusLength).toBeGreaterThanOrEqual(2048);
  });

  it("the key is the serving certificate's private key", () => {
    const key = createPrivateKey(pair.key);
    expect(key.asymmetricKeyDetails!.modulusLength).toBeGreaterThanOrEqual(2048);
    expect(new X509Certificate(pair.cert).checkPrivateKey(key)).toBe(true);
    expect(new X509Certificate(other.cert).checkPrivateKey(key)).toBe(false);
  });

  it('is for server authentication', () => {
    expect(new X509Certificate(pair.cert).keyUsage).toContain('1.3.6.1.5.5.7.3.1');
  });

  it.each([
    { name: 'default 365 days', p: () => pair, days: 365 },
    { name: 'days: 30', p: () => short, days: 30 },
  ])('validity: $name, backdated a few minutes for clock skew', ({ p, days }) => {
    const x = new X509Certificate(p().cert);
    const from = x.validFromDate.getTime();
    const to = x.validToDate.getTime();
    expect(from).toBeLessThanOrEqual(startedAt - 4 * 60_000);
    expect(from).toBeGreaterThan(startedAt - 10 * 60_000);
    expect(Math.abs(to - (startedAt + days * 86_400_000))).toBeLessThan(5 * 60_000);
  });

  it('a TLS client trusting only the CA accepts it for every name', async () => {
    const srv = tls.createServer({ cert: pair.cert, key: pair.key }, (s) => s.end());
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (srv.address() as { port: number }).port;
      for (const servername of DNS) {
        const ok = await new Promise<boolean>((resolve, reject) => {
          const s = tls.connect({ host: '127.0.0.1', port, ca: pair.ca, servername }, () => {
            resolve(s.authorized);
            s.end();
          });
          s.on('error', reject);
        });
        expect(ok).toBe(true);
      }
    } finally {
      srv.close();
    }
  });

  it('certSummary', () => {
    const x = new X509Certificate(pair.cert);
    expect(certSummary(pair.cert)).toEqual({ subject: x.subject, notAfter: x.validTo, fingerprint256: x.fingerprint256 });
  });
});

describe('watchCertFiles', () => {
  let dir: string;
  const lines: string[] = [];
  const log = createLogger(
    'debug',
    new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    }),
  );

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'kbg-tls-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function setup(sub: string, p: CertPair, withCa: boolean) {
    const d = mkdtempSync(path.join(dir, `${sub}-`));
    const cert = path.join(d, 'tls.crt');
    const key = path.join(d, 'tls.key');
    const ca = path.join(d, 'ca.crt');
    writeFileSync(cert, p.cert);
    writeFileSync(key, p.key);
    if (withCa) writeFileSync(ca, p.ca);
    const changes: CertPair[] = [];
    const waiters: (() => void)[] = [];
    const w = watchCertFiles(
      cert,
      key,
      withCa ? ca : undefined,
      (np) => {
        changes.push(np);
        waiters.splice(0).forEach((f) => f());
      },
      log,
    );
    const nextChange = (timeoutMs = 5000) =>
      new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no onChange within the timeout')), timeoutMs);
        waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    /** Write both files as the kubelet would: new files renamed into place. */
    const swap = (np: { cert: string; key: string; ca?: string }) => {
      writeFileSync(`${cert}.tmp`, np.cert);
      writeFileSync(`${key}.tmp`, np.key);
      renameSync(`${key}.tmp`, key);
      renameSync(`${cert}.tmp`, cert);
      if (np.ca !== undefined && withCa) writeFileSync(ca, np.ca);
    };
    return { w, changes, nextChange, swap };
  }

  it('loads the initial pair; without a CA file the certificate stands for the CA', () => {
    const { w } = setup('initial-noca', pair, false);
    try {
      expect(w.initial).toEqual({ cert: pair.cert, key: pair.key, ca: pair.cert });
    } finally {
      w.close();
    }
    const { w: w2 } = setup('initial-ca', pair, true);
    try {
      expect(w2.initial).toEqual({ cert: pair.cert, key: pair.key, ca: pair.ca });
    } finally {
      w2.close();
    }
  });

  it('reloads when the files change', async () => {
    const { w, changes, nextChange, swap } = setup('reload', pair, true);
    try {
      const next = nextChange();
      swap(other);
      await next;
      expect(changes.at(-1)).toEqual({ cert: other.cert, key: other.key, ca: other.ca });
      expect(lines.some((l) => l.includes('reloaded serving certificate') && l.includes(new X509Certificate(other.cert).fingerprint256))).toBe(true);
    } finally {
      w.close();
    }
  });

  it('a burst of writes is one reload (debounced)', async () => {
    const { w, changes, nextChange, swap } = setup('burst', pair, false);
    try {
      const next = nextChange();
      swap(other);
      swap(pair);
      swap(other);
      await next;
      await new Promise((r) => setTimeout(r, 500));
      expect(changes).toHaveLength(1);
      expect(changes[0]!.cert).toBe(other.cert);
    } finally {
      w.close();
    }
  });

  it('keeps the old pair on a broken file, says so, and recovers on the next good write', async () => {
    const { w, changes, nextChange, swap } = setup('broken', pair, false);
    const before = lines.length;
    try {
      swap({ cert: '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n', key: pair.key });
      await waitFor(() => lines.slice(before).join('').includes('could not be loaded'));
      expect(changes).toEqual([]);
      const logged = lines.slice(before).join('');
      expect(logged).toContain('certificate files changed but could not be loaded; keeping the previous certificate');
      expect(logged).not.toContain('PRIVATE KEY');
      const next = nextChange();
      swap(other);
      await next;
      expect(changes).toEqual([{ cert: other.cert, key: other.key, ca: other.cert }]);
    } finally {
      w.close();
    }
  });

  it('a certificate whose key does not match is not installed when onChange refuses it (as setSecureContext does)', async () => {
    const d = mkdtempSync(path.join(dir, 'mismatch-'));
    const cert = path.join(d, 'tls.crt');
    const key = path.join(d, 'tls.key');
    writeFileSync(cert, pair.cert);
    writeFileSync(key, pair.key);
    const installed: string[] = [];
    const before = lines.length;
    const w = watchCertFiles(
      cert,
      key,
      undefined,
      (p) => {
        tls.createSecureContext({ cert: p.cert, key: p.key }); // throws on a mismatched pair
        installed.push(p.cert);
      },
      log,
    );
    try {
      writeFileSync(cert, other.cert); // the key stays the old one
      await waitFor(() => lines.slice(before).join('').includes('could not be loaded'));
      expect(installed).toEqual([]);
      expect(lines.slice(before).join('')).toContain('keeping the previous certificate');
    } finally {
      w.close();
    }
  });

  it('close() stops watching', async () => {
    const { w, changes, swap } = setup('closed', pair, false);
    w.close();
    swap(other);
    await new Promise((r) => setTimeout(r, 600));
    expect(changes).toEqual([]);
  });

  it('a broken certificate at start throws', () => {
    const d = mkdtempSync(path.join(dir, 'bad-start-'));
    writeFileSync(path.join(d, 'tls.crt'), 'garbage');
    writeFileSync(path.join(d, 'tls.key'), pair.key);
    expect(() => watchCertFiles(path.join(d, 'tls.crt'), path.join(d, 'tls.key'), undefined, () => {}, log)).toThrow();
  });

  it('a missing file at start throws', () => {
    expect(() => watchCertFiles(path.join(dir, 'nope.crt'), path.join(dir, 'nope.key'), undefined, () => {}, log)).toThrow(/ENOENT/);
  });
});
