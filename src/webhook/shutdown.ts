// A graceful stop: report not ready first (readiness false, keep-alive connections told to
// close), give the endpoints time to drop this pod, then close and stop the parts in order.
import type { Logger } from './logger.ts';

export interface ShutdownPlan {
  log: Logger;
  /** How long to stay up, not ready, before closing (--shutdown-delay). */
  delaySeconds: number;
  /** At once: readiness false, timers stopped. */
  notReady: () => void;
  /** After the delay, one after another. */
  steps: (() => void | Promise<void>)[];
}

/** The stop function: runs the plan once, however often it is called. */
export function shutdownSequence(p: ShutdownPlan): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () =>
    (stopping ??= (async () => {
      p.notReady();
      p.log.info({ delaySeconds: p.delaySeconds }, 'shutting down: not ready any more');
      await new Promise((r) => setTimeout(r, p.delaySeconds * 1000));
      for (const step of p.steps) await step();
      p.log.info('stopped');
    })());
}

/**
 * SIGTERM and SIGINT stop the process: at once while it is still starting (as a container's
 * PID 1, Node ignores a SIGTERM it has no handler for, so a webhook still waiting for the API
 * server would wait out the whole grace period), else through its stop. Install before starting.
 */
export function exitOnSignals(running: () => { stop: () => Promise<void> } | undefined): void {
  for (const sig of ['SIGTERM', 'SIGINT'] as const)
    process.once(sig, () => {
      const r = running();
      if (!r) process.exit(0);
      r.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
}
