// Which serving certificate the webhook starts with (the TLS mode): mounted files, reloaded
// when they change (cert-manager, a Secret volume), or a self-signed pair generated at start,
// shared between replicas through a Secret when --tls-secret is set (tls.ts makes them).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeClient } from '../kube/client.ts';
import { list, type WebhookFlags } from './flags.ts';
import type { Logger } from './logger.ts';
import { type CertPair, certSummary, generateSelfSigned, type SelfSignedOptions, sharedSelfSigned, watchCertFiles } from './tls.ts';

export type ServingCertFlags = Pick<
  WebhookFlags,
  'tlsCertFile' | 'tlsKeyFile' | 'tlsCaFile' | 'selfSignedDns' | 'selfSignedIp' | 'tlsSecret' | 'certDir' | 'namespace'
>;

/** The names a generated certificate is for (--self-signed-dns, --self-signed-ip). */
export function selfSignedNames(flags: Pick<WebhookFlags, 'selfSignedDns' | 'selfSignedIp'>): SelfSignedOptions {
  return { dnsNames: list(flags.selfSignedDns), ipAddresses: list(flags.selfSignedIp) };
}

/**
 * The pair to serve first, and a close for the file watch. With certificate files, onFileChange
 * gets each new pair the files hold; --cert-dir receives the CA as ca.crt (local use).
 */
export async function servingCertificate(
  flags: ServingCertFlags,
  client: KubeClient,
  log: Logger,
  onFileChange: (p: CertPair) => void,
): Promise<{ pair: CertPair; close: () => void }> {
  let pair: CertPair;
  let close = () => {};
  if (flags.tlsCertFile || flags.tlsKeyFile) {
    if (!flags.tlsCertFile || !flags.tlsKeyFile) throw new Error('--tls-cert-file and --tls-key-file go together');
    const w = watchCertFiles(flags.tlsCertFile, flags.tlsKeyFile, flags.tlsCaFile, onFileChange, log);
    pair = w.initial;
    close = w.close;
  } else {
    const o = selfSignedNames(flags);
    pair = flags.tlsSecret ? await sharedSelfSigned(client, flags.namespace, flags.tlsSecret, o, log) : await generateSelfSigned(o);
  }
  if (flags.certDir) {
    mkdirSync(flags.certDir, { recursive: true });
    writeFileSync(join(flags.certDir, 'ca.crt'), pair.ca);
  }
  log.info({ certificate: certSummary(pair.cert) }, 'serving certificate loaded');
  return { pair, close };
}
