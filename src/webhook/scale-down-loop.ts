// The leader scales the old colour down once its warm period is over. The
// decision is the core's (scaleDownDue); this loop only reads the cache and
// performs it, with resourceVersion preconditions so it never scales down a
// colour that changed since it was read.
import { scaleDownDue } from '../core/scale-down.ts';
import { SCALE_DOWN_AT_ANNOTATION } from '../core/labels.ts';
import { ApiError, type KubeClient, paths } from '../kube/client.ts';
import type { AppCache } from './cache.ts';
import type { Logger } from './logger.ts';

export interface ScaleDownDeps {
  client: KubeClient;
  cache: AppCache;
  log: Logger;
  now: () => Date;
  isLeader: () => boolean;
}

export async function scaleDownPass(d: ScaleDownDeps): Promise<number> {
  if (!d.isLeader() || !d.cache.synced) return 0;
  let acted = 0;
  for (const { namespace, app } of d.cache.apps()) {
    const view = d.cache.view(namespace, app);
    if (!view) continue;
    const action = scaleDownDue(view, d.now());
    if (!action) continue;
    const clearPatch = {
      metadata: { resourceVersion: action.serviceResourceVersion, annotations: { [SCALE_DOWN_AT_ANNOTATION]: null } },
    };
    try {
      if (action.kind === 'scale-down') {
        await d.client.patch(
          paths.deployments(namespace, action.deployment),
          [
            { op: 'test', path: '/metadata/resourceVersion', value: action.resourceVersion },
            { op: 'replace', path: '/spec/replicas', value: 0 },
          ],
          'json',
        );
        d.log.info({ namespace, app, deployment: action.deployment }, 'scaled the old colour down after its warm period');
      } else {
        d.log.info({ namespace, app, reason: action.reason }, 'scale-down not needed');
      }
      await d.client.patch(paths.services(namespace, action.service), clearPatch, 'merge');
      acted++;
    } catch (e) {
      // A conflict means something changed since the cache was read; the next pass sees it.
      if (!(e instanceof ApiError && (e.status === 409 || e.status === 422 || e.status === 404)))
        d.log.warn({ namespace, app, err: (e as Error).message }, 'scale-down failed; will retry');
    }
  }
  return acted;
}

export function startScaleDownLoop(d: ScaleDownDeps, intervalMs = 5000): () => void {
  let running = false;
  const t = setInterval(() => {
    if (running) return;
    running = true;
    scaleDownPass(d).finally(() => (running = false));
  }, intervalMs);
  return () => clearInterval(t);
}
