// The Context of a real run: process streams, the system clock, the cluster
// from kubeconfig, Ctrl-C ending --watch and waits.
import { setTimeout as delay } from 'node:timers/promises';
import type { Context } from './context.ts';

export function realContext(): { ctx: Context; dispose: () => void } {
  const ac = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    if (++interrupts > 1) process.exit(130);
    ac.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const ctx: Context = {
    out: process.stdout,
    err: process.stderr,
    env: process.env,
    isTTY: process.stdout.isTTY === true,
    now: () => new Date(),
    sleep: (ms, signal) => delay(ms, undefined, { signal }).catch(() => undefined),
    connect: async (opts) => {
      // Loaded on demand: --help and completion scripts need no kubeconfig.
      const [{ KubeClient }, { KubeCluster }] = await Promise.all([import('../../src/kube/client.ts'), import('./kube-cluster.ts')]);
      const impersonate = opts.impersonate && { user: opts.impersonate.user, groups: opts.impersonate.groups, extra: {} };
      return new KubeCluster(KubeClient.connect({ kubeconfig: opts.kubeconfig, context: opts.context, ...(impersonate ? { impersonate } : {}) }));
    },
    signal: ac.signal,
  };
  return {
    ctx,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
