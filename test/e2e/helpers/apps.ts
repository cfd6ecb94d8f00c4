// Putting blue-green apps on the cluster when a webhook may already be watching.
import { apply, kubectlOk } from './cluster.ts';

export async function rolledOut(ns: string, names: readonly string[]): Promise<void> {
  await Promise.all(names.map((n) => kubectlOk(['-n', ns, 'rollout', 'status', `deployment/${n}`, '--timeout=90s'], { timeoutMs: 100_000 })));
}

/**
 * Deployments first, the rest once the Deployments are available: a webhook already watching
 * (another file's, or `npm start`'s cluster-wide one) refuses an active Service aimed at a colour
 * that is not available yet.
 */
export async function applyApps(ns: string, objs: readonly object[]): Promise<void> {
  const deployments = objs.filter((o) => (o as { kind: string }).kind === 'Deployment') as { metadata: { name: string } }[];
  await apply(deployments);
  await rolledOut(
    ns,
    deployments.map((d) => d.metadata.name),
  );
  await apply(objs.filter((o) => (o as { kind: string }).kind !== 'Deployment'));
}
