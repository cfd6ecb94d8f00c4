// Self-signed and shared (--tls-secret): every replica re-reads the Secret now and then, so a
// renewal made by this or another replica is served without a restart.
import type { KubeClient } from '../kube/client.ts';
import type { Logger } from './logger.ts';
import { type CertPair, certSummary, type SelfSignedOptions, sharedSelfSigned } from './tls.ts';

export interface CertRefreshOptions {
  client: KubeClient;
  namespace: string;
  secret: string;
  names: SelfSignedOptions;
  log: Logger;
  /** The pair served now. */
  current: () => CertPair;
  /** Serve this pair from now on. */
  serve: (p: CertPair) => void;
  everyMs?: number;
}

/** Starts the refresh; the function returned stops it. */
export function refreshSharedCertificate(o: CertRefreshOptions): () => void {
  const timer = setInterval(
    () => {
      sharedSelfSigned(o.client, o.namespace, o.secret, o.names, o.log).then(
        (p) => {
          if (p.cert === o.current().cert) return;
          o.serve(p);
          o.log.info({ certificate: certSummary(p.cert) }, 'serving the renewed certificate');
        },
        (e: Error) => o.log.warn({ err: e.message }, 'could not refresh the shared certificate'),
      );
    },
    o.everyMs ?? 10 * 60_000,
  );
  return () => clearInterval(timer);
}
