// Prometheus metrics (prom-client), on the webhook's own registry.
import { Counter, Histogram, Registry, collectDefaultMetrics, Gauge } from 'prom-client';

export interface Metrics {
  registry: Registry;
  requests: Counter<'endpoint' | 'resource' | 'operation'>;
  decisions: Counter<'endpoint' | 'outcome'>;
  redirects: Counter<'result'>;
  latency: Histogram<'endpoint'>;
  badRequests: Counter<'reason'>;
  cachedApps: Gauge;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'kube_bluegreen_' });
  return {
    registry,
    requests: new Counter({
      name: 'kube_bluegreen_admission_requests_total',
      help: 'Admission requests received, by endpoint, resource and operation.',
      labelNames: ['endpoint', 'resource', 'operation'],
      registers: [registry],
    }),
    decisions: new Counter({
      name: 'kube_bluegreen_admission_decisions_total',
      help: 'Admission decisions: allowed, redirected, denied, not-enrolled, invalid.',
      labelNames: ['endpoint', 'outcome'],
      registers: [registry],
    }),
    redirects: new Counter({
      name: 'kube_bluegreen_redirects_total',
      help: 'Changes redirected to the idle colour: done, dry-run, or failed (the request was then denied).',
      labelNames: ['result'],
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'kube_bluegreen_admission_duration_seconds',
      help: 'Time to answer an admission request, including any redirect.',
      labelNames: ['endpoint'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    badRequests: new Counter({
      name: 'kube_bluegreen_bad_requests_total',
      help: 'Requests answered 400 or 413: undecodable or unexpected AdmissionReviews.',
      labelNames: ['reason'],
      registers: [registry],
    }),
    cachedApps: new Gauge({ name: 'kube_bluegreen_cached_apps', help: 'Enrolled apps in the cache.', registers: [registry] }),
  };
}
