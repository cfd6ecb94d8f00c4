#!/usr/bin/env node
// kube-bluegreen-webhook: the admission webhook process. This file wires the parts: flags
// (flags.ts), the serving certificate (serving-cert.ts, cert-refresh.ts), the CA-bundle keeper
// (ca-bundle-keeper.ts), the cache, the reconciler and its leader election, the HTTPS server,
// and the graceful stop (shutdown.ts).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { recordSeal } from '../core/pending-change.ts';
import { KubeClient } from '../kube/client.ts';
import { EnrolledObjectStore, Reflector } from './cache.ts';
import { keepCaBundle } from './ca-bundle-keeper.ts';
import { refreshSharedCertificate } from './cert-refresh.ts';
import { KubeWebhookCluster } from './cluster.ts';
import { BREAK_GLASS_GROUP, checkBreakGlassGroup } from './configurations.ts';
import { list, splitHostPort, truthy, webhookCommand, type WebhookFlags } from './flags.ts';
import { LeaderElector } from './leader.ts';
import { createLogger } from './logger.ts';
import { createMetrics } from './metrics.ts';
import { Reconciler } from './reconciler.ts';
import { PassedChecks } from './redirect-checks.ts';
import { loadRecordKey, readRecordKeyFile } from './record-key.ts';
import { applyConfigurations, deleteConfigurations } from './registration.ts';
import { type AppDeps, createWebhookApp, listenHttps, listenProbes } from './server.ts';
import { selfSignedNames, servingCertificate } from './serving-cert.ts';
import { exitOnSignals, shutdownSequence } from './shutdown.ts';
import type { CertPair } from './tls.ts';

export { webhookCommand, type WebhookFlags };

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

  // TLS: the server is told of a new pair from the files once it listens.
  let onCert: (p: CertPair) => void = () => {};
  const serving = await servingCertificate(flags, client, log, (p) => onCert(p));
  let tls = serving.pair;
  const serve = (p: CertPair) => {
    tls = p;
    server.setCertificate(p);
  };

  // Cache
  const store = new EnrolledObjectStore();
  const reflectors = [new Reflector(client, 'deployment', store, log), new Reflector(client, 'service', store, log), new Reflector(client, 'hpa', store, log)];
  store.watchingNow = () => reflectors.every((r) => r.healthy);
  store.onChange(() => metrics.cachedApps.set(store.size));
  const leader = new LeaderElector({ cluster, namespace: flags.namespace, name: flags.leaderElectionId, identity: flags.leaderIdentity || hostname(), log });
  const now = () => new Date();
  const reconciler = new Reconciler({
    cluster,
    cache: store,
    seal,
    log,
    now,
    metrics,
    isLeader: () => leader.isLeader,
    resyncMs: Number(flags.resyncInterval) * 1000,
  });
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
  onCert = serve;
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
  const stopCaKeeper = truthy(flags.patchCaBundle) ? await keepCaBundle(client, flags.webhookConfigName, () => tls.ca, log) : () => {};
  const stopCertRefresh =
    !flags.tlsCertFile && flags.tlsSecret
      ? refreshSharedCertificate({ client, namespace: flags.namespace, secret: flags.tlsSecret, names: selfSignedNames(flags), log, current: () => tls, serve })
      : () => {};

  leader.start();
  reconciler.start();

  const stop = shutdownSequence({
    log,
    delaySeconds: Number(flags.shutdownDelay),
    notReady: () => {
      shuttingDown = true;
      stopCaKeeper();
      stopCertRefresh();
    },
    steps: [
      () => server.close(),
      () => probes?.close(),
      () => reconciler.stop(),
      () => leader.stop(),
      () => reflectors.forEach((r) => r.stop()),
      serving.close,
      async () => {
        if (flags.registerUrl && truthy(flags.unregisterOnExit)) await deleteConfigurations(client, flags.webhookConfigName).catch(() => {});
      },
      () => client.close(),
    ],
  });
  return { stop, port: server.port, ca: tls.ca, ...(probes ? { probePort: probes.port } : {}) };
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
  // Signals first, so that a webhook still starting stops at once.
  let running: Awaited<ReturnType<typeof runWebhook>> | undefined;
  exitOnSignals(() => running);
  try {
    running = await runWebhook(flags);
  } catch (e) {
    process.stderr.write(`kube-bluegreen-webhook: ${(e as Error).message}\n`);
    process.exit(1);
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/webhook/main.js') || process.argv[1]?.endsWith('/webhook/main.ts'))
  void main();
