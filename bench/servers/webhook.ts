// Benchmark server: the real webhook app (createWebhookApp + listenHttps), its
// store filled with the captured cluster objects (and synthetic apps for the
// scale runs), a silent logger and real metrics. The checks a redirect makes
// at admission (a SubjectAccessReview and a dry run of the idle patch) go to
// a stand-in that answers at once and counts them: this process measures the
// webhook's own cost; the apiserver section measures the real round trips.
import { readFileSync } from 'node:fs';
import { recordSeal } from '../../src/core/pending-change.ts';
import { EnrolledObjectStore } from '../../src/webhook/cache.ts';
import type { WebhookCluster } from '../../src/webhook/cluster.ts';
import { createLogger } from '../../src/webhook/logger.ts';
import { createMetrics } from '../../src/webhook/metrics.ts';
import { createWebhookApp, listenHttps, type RunningServer } from '../../src/webhook/server.ts';
import { enrolledObjects, loadCaptured } from '../lib/fixtures.ts';
import { collect, countRequests, serveIpc } from './ipc.ts';

export interface WebhookStartArgs {
  cert: string;
  key: string;
  /** Fixture whose captured cluster objects fill the store. */
  fixture: string;
  /** Enrolled apps in the store (the fixture's own app plus clones); default 1. */
  apps?: number;
  /** Keep whole objects in the store, as before the cache was slimmed (memory comparison). */
  wholeObjects?: boolean;
}

export interface WebhookStarted {
  port: number;
  apps: number;
  objects: number;
  memory: { empty: { rss: number; heapUsed: number }; filled: { rss: number; heapUsed: number }; gc: boolean };
}

let running: RunningServer | undefined;
let redirects = 0;

serveIpc({
  async start(a: WebhookStartArgs): Promise<WebhookStarted> {
    const store = new EnrolledObjectStore({ slim: !a.wholeObjects });
    const metrics = createMetrics();
    const checks = {
      mayPatchDeployment: async () => {
        redirects++;
        return { allowed: true };
      },
      patchDeployment: async () => ({ metadata: {} }),
    } as unknown as WebhookCluster;
    const app = createWebhookApp({
      cache: store,
      log: createLogger('silent'),
      metrics,
      now: () => new Date(),
      ready: () => store.synced,
      shuttingDown: () => false,
      // The key that sealed the captured reviews' records (test/fixtures/record-key).
      admission: { seal: recordSeal(readFileSync(new URL('../../test/fixtures/record-key', import.meta.url))) },
      cluster: checks,
    });
    running = await listenHttps(app, { cert: a.cert, key: a.key, ca: a.cert }, '127.0.0.1', 0);
    countRequests(running.server);
    const fixture = loadCaptured(a.fixture);
    const empty = collect();
    let objects = 0;
    for (const o of enrolledObjects(fixture, a.apps ?? 1)) {
      store.upsert(o.kind, o.obj);
      objects++;
    }
    store.synced = true;
    metrics.cachedApps.set(store.size);
    const filled = collect();
    return {
      port: running.port,
      apps: store.size,
      objects,
      memory: { empty: { rss: empty.rss, heapUsed: empty.heapUsed }, filled: { rss: filled.rss, heapUsed: filled.heapUsed }, gc: filled.gc },
    };
  },
  redirects: () => redirects,
  async stop() {
    await running?.close(1000);
    setImmediate(() => process.exit(0));
  },
});
