// --patch-ca-bundle: keeps the serving CA in the webhook configurations' caBundle. Retried until
// the configurations exist (the chart may create them after the pods), and re-asserted so that a
// re-applied configuration with an empty caBundle heals itself.
import type { KubeClient } from '../kube/client.ts';
import type { Logger } from './logger.ts';
import { patchCaBundle } from './registration.ts';

/** Writes the CA once (awaited), then every 30 s (5 s after a failure); the function returned stops it. */
export async function keepCaBundle(client: KubeClient, configurationName: string, ca: () => string, log: Logger): Promise<() => void> {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const keep = async () => {
    let next = 30_000;
    try {
      await patchCaBundle(client, configurationName, ca(), log);
    } catch (e) {
      log.warn({ err: (e as Error).message, configuration: configurationName }, 'could not write caBundle yet; retrying');
      next = 5_000;
    }
    if (!stopped) timer = setTimeout(keep, next);
  };
  await keep();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
