// `npm start`: the embedded default. Brings the local control plane up (building
// it on first use), starts the webhook against it and registers it, enrols the
// sample app `shop` in namespace `demo`, prints commands to try, and stays in
// the foreground until Ctrl-C. The cluster keeps running until `npm run cluster:down`.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { up, WEBHOOK_CLIENT_NAME } from '../local-cluster/control-plane.ts';
import { apply, kubectl } from '../test/e2e/helpers/cluster.ts';
import { sampleApp } from '../test/fixtures/sample-app.ts';
import { runWebhook } from '../src/webhook/main.ts';

const REPO = resolve(import.meta.dirname, '..');
const PORT = Number(process.env.KBG_PORT ?? 19443);
const say = (m: string) => process.stderr.write(`${m}\n`);

async function main() {
  const { env } = await up({ log: (m) => say(`[cluster] ${m}`) });

  // kubectl finds `kubectl-bg` on PATH: a wrapper running the plugin from this checkout.
  const binDir = join(REPO, '.cluster/bin');
  mkdirSync(binDir, { recursive: true });
  const wrapper = join(binDir, 'kubectl-bg');
  writeFileSync(wrapper, `#!/bin/sh\nexec "${join(REPO, 'node_modules/.bin/node')}" "${join(REPO, 'plugin/src/main.ts')}" "$@"\n`);
  chmodSync(wrapper, 0o755);

  say('[demo] enrolling the sample app shop in namespace demo');
  await apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'demo' } });
  for (let i = 0; i < 50 && (await kubectl(['-n', 'demo', 'get', 'sa', 'default'])).code !== 0; i++) await new Promise((r) => setTimeout(r, 200));
  await apply(sampleApp({ namespace: 'demo', replicas: 3, preview: true }));
  for (const d of ['shop-blue', 'shop-green']) await kubectl(['-n', 'demo', 'rollout', 'status', `deployment/${d}`, '--timeout=60s'], { timeoutMs: 70_000 });

  say(`[demo] starting the webhook on https://127.0.0.1:${PORT}`);
  const webhook = await runWebhook({
    kubeconfig: env.kubeconfig,
    listen: `127.0.0.1:${PORT}`,
    selfSignedDns: 'localhost',
    selfSignedIp: '127.0.0.1',
    certDir: join(REPO, '.cluster/webhook'),
    registerUrl: `https://127.0.0.1:${PORT}`,
    unregisterOnExit: true,
    excludeNamespaces: 'kube-system',
    webhookConfigName: 'kube-bluegreen',
    namespace: 'default',
    leaderElectionId: 'kube-bluegreen-reconciler',
    resyncInterval: '30',
    recordKeySecret: 'kube-bluegreen-record-key',
    // The local apiserver presents its webhook client certificate (its AdmissionConfiguration):
    // only it may send admission reviews.
    clientCaFile: env.caCert,
    clientNames: WEBHOOK_CLIENT_NAME,
    shutdownDelay: '0',
    logLevel: process.env.KBG_LOG_LEVEL ?? 'info',
  });

  process.stdout.write(`
kube-bluegreen is running: a local Kubernetes ${env.apiserver}, the webhook, and the app shop (namespace demo).
In another terminal:

  export KUBECONFIG=${env.kubeconfig}
  export PATH=${env.kubeBinDir}:${binDir}:$PATH     # kubectl v1.36 and the kubectl-bg plugin

  kubectl -n demo get deployments,services
  kubectl bg status shop -n demo
  kubectl -n demo set image deployment/shop-blue app=registry.example/shop:v2    # redirected to shop-green
  kubectl bg status shop -n demo --watch                                         # idle rolling out -> ready to switch
  kubectl bg switch shop -n demo --wait
  kubectl -n demo get endpointslices -l kubernetes.io/service-name=shop -o wide
  kubectl bg rollback shop -n demo
  kubectl -n demo scale deployment/shop-blue --replicas=0                        # refused: it is live
  kubectl -n demo patch service shop -p '{"spec":{"selector":{"slot":"purple"}}}' # refused

Ctrl-C stops the webhook (and removes its webhook configurations); 'npm run cluster:down' stops the cluster.
The webhook's log follows (JSON lines).

`);
  let stopping = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.on(sig, () => {
      if (stopping) return;
      stopping = true;
      say('\n[demo] stopping the webhook');
      webhook.stop().then(
        () => process.exit(0),
        (e) => {
          say(`[demo] ${(e as Error).message}`);
          process.exit(1);
        },
      );
    });
}

main().catch((e) => {
  say(`npm start failed: ${(e as Error).message}`);
  process.exit(1);
});
