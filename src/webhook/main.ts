#!/usr/bin/env node
// kube-bluegreen-webhook: the admission webhook process.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { recordSeal } from '../core/pending-change.ts';
import { KubeClient } from '../kube/client.ts';
import { EnrolledObjectStore, Reflector } from './cache.ts';
import { KubeWebhookCluster } from './cluster.ts';
import { BREAK_GLASS_GROUP, CONFIG_NAME, checkBreakGlassGroup } from './configurations.ts';
import { LeaderElector } from './leader.ts';
import { createLogger } from './logger.ts';
import { createMetrics } from './metrics.ts';
import { Reconciler } from './reconciler.ts';
import { PassedChecks } from './redirect-checks.ts';
import { loadRecordKey, readRecordKeyFile } from './record-key.ts';
import { applyConfigurations, deleteConfigurations, patchCaBundle } from './registration.ts';
import { type AppDeps, createWebhookApp, listenHttps, listenProbes } from './server.ts';
import { type CertPair, certSummary, generateSelfSigned, sharedSelfSigned, watchCertFiles } from './tls.ts';

const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);

export function webhookCommand(): Command {
  return new Command('kube-bluegreen-webhook')
    .description(
      'Admission webhook for kube-bluegreen: redirects changes of the live colour to the idle colour and refuses patches that would break routing.\n' +
        'Every flag can also be set with the environment variable shown.',
    )
    .addOption(new Option('--kubeconfig <path>', 'kubeconfig file (default: in-cluster service account in a pod, else $KUBECONFIG or ~/.kube/config)').env('KUBECONFIG'))
    .addOption(new Option('--context <name>', 'kubeconfig context').env('KBG_CONTEXT'))
    .addOption(new Option('--listen <host:port>', 'HTTPS listen address').env('KBG_LISTEN').default('0.0.0.0:9443'))
    .addOption(new Option('--tls-cert-file <path>', 'serving certificate (PEM); reloaded when it changes').env('KBG_TLS_CERT_FILE'))
    .addOption(new Option('--tls-key-file <path>', 'serving key (PEM)').env('KBG_TLS_KEY_FILE'))
    .addOption(new Option('--tls-ca-file <path>', 'CA of the serving certificate, for --patch-ca-bundle (default: the certificate itself)').env('KBG_TLS_CA_FILE'))
    .addOption(new Option('--self-signed', 'generate a CA and serving certificate at start (the default when no certificate files are given)').env('KBG_SELF_SIGNED'))
    .addOption(new Option('--self-signed-dns <names>', 'comma-separated DNS names for the generated certificate').env('KBG_SELF_SIGNED_DNS').default('localhost'))
    .addOption(new Option('--self-signed-ip <ips>', 'comma-separated IP addresses for the generated certificate').env('KBG_SELF_SIGNED_IP').default('127.0.0.1'))
    .addOption(new Option('--tls-secret <name>', 'share the generated pair between replicas through this Secret in --namespace').env('KBG_TLS_SECRET'))
    .addOption(new Option('--cert-dir <dir>', 'write the CA of the generated certificate here as ca.crt (local use)').env('KBG_CERT_DIR'))
    .addOption(new Option('--register-url <url>', 'create or replace the webhook configurations so the apiserver calls this URL (a webhook running outside the cluster)').env('KBG_REGISTER_URL'))
    .addOption(new Option('--unregister-on-exit', 'with --register-url: delete the webhook configurations on shutdown').env('KBG_UNREGISTER_ON_EXIT'))
    .addOption(new Option('--exclude-namespaces <names>', 'with --register-url: namespaces never sent to the webhook').env('KBG_EXCLUDE_NAMESPACES').default('kube-system'))
    .addOption(new Option('--namespace-match-labels <k=v,...>', 'with --register-url: only namespaces carrying these labels are sent to the webhook').env('KBG_NAMESPACE_MATCH_LABELS'))
    .addOption(
      new Option('--break-glass-group <group>', "with --register-url: requests from this group skip the webhooks (the cluster policy still applies); '' for none")
        .env('KBG_BREAK_GLASS_GROUP')
        .default(BREAK_GLASS_GROUP),
    )
    .addOption(new Option('--patch-ca-bundle', "write the CA into the existing webhook configurations' caBundle").env('KBG_PATCH_CA_BUNDLE'))
    .addOption(new Option('--webhook-config-name <name>', 'name of the Mutating- and ValidatingWebhookConfiguration').env('KBG_WEBHOOK_CONFIG_NAME').default(CONFIG_NAME))
    .addOption(new Option('--namespace <ns>', "the webhook's own namespace (Secret, Lease)").env('POD_NAMESPACE').default('kube-bluegreen'))
    .addOption(new Option('--leader-election-id <name>', 'Lease name for the reconciler (one replica applies recorded changes, live labels, scale-downs)').env('KBG_LEADER_ELECTION_ID').default('kube-bluegreen-reconciler'))
    .addOption(new Option('--leader-identity <name>', 'this replica in the Lease (a restarted container keeps it and leads again at once); default the host name').env('POD_NAME'))
    .addOption(new Option('--resync-interval <seconds>', 'how often the reconciler looks at every app even without a change').env('KBG_RESYNC_INTERVAL').default('30'))
    .addOption(new Option('--record-key-secret <name>', 'Secret in --namespace holding the key that seals pending-change records (created if missing)').env('KBG_RECORD_KEY_SECRET').default('kube-bluegreen-record-key'))
    .addOption(new Option('--record-key-file <path>', 'read the record key from this file instead of the Secret').env('KBG_RECORD_KEY_FILE'))
    .addOption(new Option('--client-ca-file <path>', "require a client certificate signed by this CA (the API server's, from its AdmissionConfiguration) for every HTTPS connection").env('KBG_CLIENT_CA_FILE'))
    .addOption(new Option('--client-names <names>', 'with --client-ca-file: comma-separated certificate names (CN or DNS SAN) admission requests are accepted from; empty: any the CA signed').env('KBG_CLIENT_NAMES'))
    .addOption(new Option('--probe-listen <host:port>', 'also serve /healthz, /readyz and /metrics over plain HTTP here (needed for probes when --client-ca-file is set)').env('KBG_PROBE_LISTEN'))
    .addOption(new Option('--shutdown-delay <seconds>', 'on SIGTERM, report not-ready this long before closing the listener').env('KBG_SHUTDOWN_DELAY').default('5'))
    .addOption(new Option('--log-level <level>', 'trace, debug, info, warn, error').env('KBG_LOG_LEVEL').default('info'))
    .addOption(new Option('--capture-dir <dir>', 'development only: write every AdmissionReview received to this directory (they contain whole objects)').env('KBG_CAPTURE_DIR'));
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

const truthy = (v: boolean | string | undefined) => v === true || v === 'true' || v === '1';

export async function runWebhook(flags: WebhookFlags): Promise<{ stop: () => Promise<void>; port: number; ca: string; probePort?: number }> {
  const log = createLogger(flags.logLevel);
  // Before anything starts: a group the condition cannot quote is a usage error.
  const breakGlassGroup = checkBreakGlassGroup((flags.breakGlassGroup ?? BREAK_GLASS_GROUP).trim());
  const metrics = createMetrics();
  const inCluster = !flags.kubeconfig && !!process.env.KUBERNETES_SERVICE_HOST;
  const client = KubeClient.connect({ kubeconfig: flags.kubeconfig, context: flags.context, inCluster, timeoutMs: 8000 });
  const cluster = new KubeWebhookCluster(client);
  // Who this process is (its reconciler's writes of the records are its own), and the records' key.
  const self = await cluster.whoAmI();
  const seal = recordSeal(flags.recordKeyFile ? readRecordKeyFile(flags.recordKeyFile) : await loadRecordKey(cluster, flags.namespace, flags.recordKeySecret));
  log.info({ identity: self }, 'acting as');
  const clientCa = flags.clientCaFile ? readFileSync(flags.clientCaFile, 'utf8') : undefined;

  // TLS
  let tls: CertPair;
  let closeCertWatch = () => {};
  let onCert: (p: CertPair) => void = () => {};
  if (flags.tlsCertFile || flags.tlsKeyFile) {
    if (!flags.tlsCertFile || !flags.tlsKeyFile) throw new Error('--tls-cert-file and --tls-key-file go together');
    const w = watchCertFiles(flags.tlsCertFile, flags.tlsKeyFile, flags.tlsCaFile, (p) => onCert(p), log);
    tls = w.initial;
    closeCertWatch = w.close;
  } else {
    const o = { dnsNames: list(flags.selfSignedDns), ipAddresses: list(flags.selfSignedIp) };
    tls = flags.tlsSecret ? await sharedSelfSigned(client, flags.namespace, flags.tlsSecret, o, log) : await generateSelfSigned(o);
  }
  if (flags.certDir) {
    mkdirSync(flags.certDir, { recursive: true });
    writeFileSync(join(flags.certDir, 'ca.crt'), tls.ca);
  }
  log.info({ certificate: certSummary(tls.cert) }, 'serving certificate loaded');

  // Cache
  const store = new EnrolledObjectStore();
  const reflectors = [new Reflector(client, 'deployment', store, log), new Reflector(client, 'service', store, log), new Reflector(client, 'hpa', store, log)];
  store.watchingNow = () => reflectors.every((r) => r.healthy);
  store.onChange(() => metrics.cachedApps.set(store.size));
  const leader = new LeaderElector({ cluster, namespace: flags.namespace, name: flags.leaderElectionId, identity: flags.leaderIdentity || hostname(), log });
  const now = () => new Date();
  const reconciler = new Reconciler({ cluster, cache: store, seal, log, now, metrics, isLeader: () => leader.isLeader, resyncMs: Number(flags.resyncInterval) * 1000 });
  store.onChange((namespace, appName) => reconciler.enqueue(namespace, appName));
  leader.onChange = (leading) => {
    if (leading) reconciler.enqueueAll();
  };
  const synced = Promise.all(reflectors.map((r) => r.start())).then(() => {
    store.synced = true;
    log.info({ apps: store.size }, 'cache synced');
  });

  let shuttingDown = false;
  const captureDir = flags.captureDir;
  if (captureDir) mkdirSync(captureDir, { recursive: true });
  const deps: AppDeps = {
    cache: store,
    log,
    metrics,
    now,
    ready: () => store.synced && reflectors.every((r) => r.healthy) && !shuttingDown,
    shuttingDown: () => shuttingDown,
    admission: { seal, self },
    cluster,
    passedChecks: new PassedChecks(),
    ...(clientCa ? { clientNames: list(flags.clientNames ?? '') } : {}),
    ...(captureDir ? { capture: (endpoint: string, body: unknown) => capture(captureDir, endpoint, body) } : {}),
  };
  const app = createWebhookApp(deps);
  const [host, portText] = splitHostPort(flags.listen);
  const server = await listenHttps(app, tls, host, Number(portText), clientCa);
  const probeAddr = flags.probeListen ? splitHostPort(flags.probeListen) : undefined;
  const probes = probeAddr ? await listenProbes(deps, probeAddr[0], Number(probeAddr[1])) : undefined;
  if (probes) log.info({ listen: flags.probeListen, port: probes.port }, 'probes listening (HTTP)');
  onCert = (p) => {
    tls = p;
    server.setCertificate(p);
  };
  log.info({ listen: `${host}:${server.port}` }, 'listening (HTTPS)');

  await synced;
  const exclude = list(flags.excludeNamespaces);
  const matchLabels = Object.fromEntries(list(flags.namespaceMatchLabels ?? '').map((kv) => kv.split('=', 2) as [string, string]));
  if (flags.registerUrl)
    await applyConfigurations(
      client,
      {
        client: { url: flags.registerUrl },
        caBundle: Buffer.from(tls.ca).toString('base64'),
        excludeNamespaces: exclude,
        namespaceMatchLabels: matchLabels,
        name: flags.webhookConfigName,
        breakGlassGroup,
      },
      log,
    );
  // Keep the CA in the configurations: retried until they exist (the chart may create them after
  // the pods), and re-asserted so a re-applied configuration with an empty caBundle heals itself.
  let caKeeper: NodeJS.Timeout | undefined;
  if (truthy(flags.patchCaBundle)) {
    const keep = async () => {
      let next = 30_000;
      try {
        await patchCaBundle(client, flags.webhookConfigName, tls.ca, log);
      } catch (e) {
        log.warn({ err: (e as Error).message, configuration: flags.webhookConfigName }, 'could not write caBundle yet; retrying');
        next = 5_000;
      }
      caKeeper = setTimeout(keep, next);
    };
    await keep();
  }
  // Self-signed and shared: pick up a renewal (by this or another replica) without a restart.
  let certRefresh: NodeJS.Timeout | undefined;
  if (!flags.tlsCertFile && flags.tlsSecret) {
    const secret = flags.tlsSecret;
    certRefresh = setInterval(() => {
      sharedSelfSigned(client, flags.namespace, secret, { dnsNames: list(flags.selfSignedDns), ipAddresses: list(flags.selfSignedIp) }, log).then(
        (p) => {
          if (p.cert === tls.cert) return;
          tls = p;
          server.setCertificate(p);
          log.info({ certificate: certSummary(p.cert) }, 'serving the renewed certificate');
        },
        (e: Error) => log.warn({ err: e.message }, 'could not refresh the shared certificate'),
      );
    }, 10 * 60_000);
  }

  leader.start();
  reconciler.start();

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      shuttingDown = true;
      clearTimeout(caKeeper);
      clearInterval(certRefresh);
      log.info({ delaySeconds: Number(flags.shutdownDelay) }, 'shutting down: not ready any more');
      await new Promise((r) => setTimeout(r, Number(flags.shutdownDelay) * 1000));
      await server.close();
      await probes?.close();
      reconciler.stop();
      await leader.stop();
      for (const r of reflectors) r.stop();
      closeCertWatch();
      if (flags.registerUrl && truthy(flags.unregisterOnExit)) await deleteConfigurations(client, flags.webhookConfigName).catch(() => {});
      client.close();
      log.info('stopped');
    })());
  return { stop, port: server.port, ca: tls.ca, ...(probes ? { probePort: probes.port } : {}) };
}

function splitHostPort(s: string): [string, string] {
  const i = s.lastIndexOf(':');
  if (i < 0) throw new Error(`--listen ${s}: expected host:port`);
  return [s.slice(0, i).replace(/^\[|\]$/g, '') || '0.0.0.0', s.slice(i + 1)];
}

let captured = 0;
function capture(dir: string, endpoint: string, body: unknown) {
  const r = (body as { request?: { uid?: string; kind?: { kind?: string }; operation?: string } })?.request;
  writeFileSync(join(dir, `${String(++captured).padStart(4, '0')}-${endpoint}-${r?.kind?.kind}-${r?.operation}-${r?.uid}.json`), JSON.stringify(body, null, 2));
}

async function main() {
  const cmd = webhookCommand();
  cmd.parse();
  const flags = cmd.opts<WebhookFlags>();
  // Signals first: as a container's PID 1, Node ignores SIGTERM it has no handler for, so a
  // webhook still starting (the API server unreachable) would wait out the whole grace period.
  let running: Awaited<ReturnType<typeof runWebhook>> | undefined;
  for (const sig of ['SIGTERM', 'SIGINT'] as const)
    process.once(sig, () => {
      if (!running) process.exit(0);
      running.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  try {
    running = await runWebhook(flags);
  } catch (e) {
    process.stderr.write(`kube-bluegreen-webhook: ${(e as Error).message}\n`);
    process.exit(1);
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/webhook/main.js') || process.argv[1]?.endsWith('/webhook/main.ts')) void main();
