// The webhook process's flags: each can also be set with the environment variable shown.
import { Command, Option } from 'commander';
import { BREAK_GLASS_GROUP, CONFIG_NAME } from './configurations.ts';

export function webhookCommand(): Command {
  return new Command('kube-bluegreen-webhook')
    .description(
      'Admission webhook for kube-bluegreen: redirects changes of the live colour to the idle colour and refuses patches that would break routing.\n' +
        'Every flag can also be set with the environment variable shown.',
    )
    .addOption(
      new Option('--kubeconfig <path>', 'kubeconfig file (default: in-cluster service account in a pod, else $KUBECONFIG or ~/.kube/config)').env('KUBECONFIG'),
    )
    .addOption(new Option('--context <name>', 'kubeconfig context').env('KBG_CONTEXT'))
    .addOption(new Option('--listen <host:port>', 'HTTPS listen address').env('KBG_LISTEN').default('0.0.0.0:9443'))
    .addOption(new Option('--tls-cert-file <path>', 'serving certificate (PEM); reloaded when it changes').env('KBG_TLS_CERT_FILE'))
    .addOption(new Option('--tls-key-file <path>', 'serving key (PEM)').env('KBG_TLS_KEY_FILE'))
    .addOption(
      new Option('--tls-ca-file <path>', 'CA of the serving certificate, for --patch-ca-bundle (default: the certificate itself)').env('KBG_TLS_CA_FILE'),
    )
    .addOption(
      new Option('--self-signed', 'generate a CA and serving certificate at start (the default when no certificate files are given)').env('KBG_SELF_SIGNED'),
    )
    .addOption(
      new Option('--self-signed-dns <names>', 'comma-separated DNS names for the generated certificate').env('KBG_SELF_SIGNED_DNS').default('localhost'),
    )
    .addOption(
      new Option('--self-signed-ip <ips>', 'comma-separated IP addresses for the generated certificate').env('KBG_SELF_SIGNED_IP').default('127.0.0.1'),
    )
    .addOption(new Option('--tls-secret <name>', 'share the generated pair between replicas through this Secret in --namespace').env('KBG_TLS_SECRET'))
    .addOption(new Option('--cert-dir <dir>', 'write the CA of the generated certificate here as ca.crt (local use)').env('KBG_CERT_DIR'))
    .addOption(
      new Option(
        '--register-url <url>',
        'create or replace the webhook configurations so the apiserver calls this URL (a webhook running outside the cluster)',
      ).env('KBG_REGISTER_URL'),
    )
    .addOption(new Option('--unregister-on-exit', 'with --register-url: delete the webhook configurations on shutdown').env('KBG_UNREGISTER_ON_EXIT'))
    .addOption(
      new Option('--exclude-namespaces <names>', 'with --register-url: namespaces never sent to the webhook')
        .env('KBG_EXCLUDE_NAMESPACES')
        .default('kube-system'),
    )
    .addOption(
      new Option('--namespace-match-labels <k=v,...>', 'with --register-url: only namespaces carrying these labels are sent to the webhook').env(
        'KBG_NAMESPACE_MATCH_LABELS',
      ),
    )
    .addOption(
      new Option(
        '--break-glass-group <group>',
        "with --register-url: requests from this group skip the webhooks (the cluster policy still applies); '' for none",
      )
        .env('KBG_BREAK_GLASS_GROUP')
        .default(BREAK_GLASS_GROUP),
    )
    .addOption(new Option('--patch-ca-bundle', "write the CA into the existing webhook configurations' caBundle").env('KBG_PATCH_CA_BUNDLE'))
    .addOption(
      new Option('--webhook-config-name <name>', 'name of the Mutating- and ValidatingWebhookConfiguration')
        .env('KBG_WEBHOOK_CONFIG_NAME')
        .default(CONFIG_NAME),
    )
    .addOption(new Option('--namespace <ns>', "the webhook's own namespace (Secret, Lease)").env('POD_NAMESPACE').default('kube-bluegreen'))
    .addOption(
      new Option('--leader-election-id <name>', 'Lease name for the reconciler (one replica applies recorded changes, live labels, scale-downs)')
        .env('KBG_LEADER_ELECTION_ID')
        .default('kube-bluegreen-reconciler'),
    )
    .addOption(
      new Option('--leader-identity <name>', 'this replica in the Lease (a restarted container keeps it and leads again at once); default the host name').env(
        'POD_NAME',
      ),
    )
    .addOption(
      new Option('--resync-interval <seconds>', 'how often the reconciler looks at every app even without a change').env('KBG_RESYNC_INTERVAL').default('30'),
    )
    .addOption(
      new Option('--record-key-secret <name>', 'Secret in --namespace holding the key that seals pending-change records (created if missing)')
        .env('KBG_RECORD_KEY_SECRET')
        .default('kube-bluegreen-record-key'),
    )
    .addOption(new Option('--record-key-file <path>', 'read the record key from this file instead of the Secret').env('KBG_RECORD_KEY_FILE'))
    .addOption(
      new Option(
        '--client-ca-file <path>',
        "require a client certificate signed by this CA (the API server's, from its AdmissionConfiguration) for every HTTPS connection",
      ).env('KBG_CLIENT_CA_FILE'),
    )
    .addOption(
      new Option(
        '--client-names <names>',
        'with --client-ca-file: comma-separated certificate names (CN or DNS SAN) admission requests are accepted from; empty: any the CA signed',
      ).env('KBG_CLIENT_NAMES'),
    )
    .addOption(
      new Option(
        '--probe-listen <host:port>',
        'also serve /healthz, /readyz and /metrics over plain HTTP here (needed for probes when --client-ca-file is set)',
      ).env('KBG_PROBE_LISTEN'),
    )
    .addOption(
      new Option('--shutdown-delay <seconds>', 'on SIGTERM, report not-ready this long before closing the listener').env('KBG_SHUTDOWN_DELAY').default('5'),
    )
    .addOption(new Option('--log-level <level>', 'trace, debug, info, warn, error').env('KBG_LOG_LEVEL').default('info'))
    .addOption(
      new Option('--capture-dir <dir>', 'development only: write every AdmissionReview received to this directory (they contain whole objects)').env(
        'KBG_CAPTURE_DIR',
      ),
    );
}

export interface WebhookFlags {
  kubeconfig?: string;
  context?: string;
  listen: string;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  tlsCaFile?: string;
  selfSigned?: boolean | string;
  selfSignedDns: string;
  selfSignedIp: string;
  tlsSecret?: string;
  certDir?: string;
  registerUrl?: string;
  unregisterOnExit?: boolean | string;
  excludeNamespaces: string;
  namespaceMatchLabels?: string;
  breakGlassGroup?: string;
  patchCaBundle?: boolean | string;
  webhookConfigName: string;
  namespace: string;
  leaderElectionId: string;
  leaderIdentity?: string;
  resyncInterval: string;
  recordKeySecret: string;
  recordKeyFile?: string;
  clientCaFile?: string;
  clientNames?: string;
  probeListen?: string;
  shutdownDelay: string;
  logLevel: string;
  captureDir?: string;
}

/** A flag given as a bare switch or through its environment variable ('true', '1'). */
export const truthy = (v: boolean | string | undefined) => v === true || v === 'true' || v === '1';

/** A comma-separated list flag. */
export const list = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** host:port of a listen flag ([::1]:9443 too); an empty host is every address. */
export function splitHostPort(s: string): [string, string] {
  const i = s.lastIndexOf(':');
  if (i < 0) throw new Error(`--listen ${s}: expected host:port`);
  return [s.slice(0, i).replace(/^\[|\]$/g, '') || '0.0.0.0', s.slice(i + 1)];
}
