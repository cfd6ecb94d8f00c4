// The load generator: autocannon (as a library) over HTTPS with keep-alive,
// one request body, N connections, for a duration or at a fixed overall rate.
// Latencies are taken from autocannon's per-response events in fractional
// milliseconds (its own histogram keeps whole milliseconds only), and the
// server's CPU time is read from the server process around the run.
import https from 'node:https';
import autocannon, { type Request } from 'autocannon';
import { percentileSorted } from './stats.ts';
import type { ServerProc } from './server-proc.ts';

export interface LoadOptions {
  port: number;
  path: string;
  body: string;
  connections: number;
  durationS: number;
  /** Requests per second over all connections (a steady load); default: as fast as the server answers. */
  overallRate?: number;
  /** Several requests, cycled through on every connection (overrides path/body). */
  requests?: Request[];
  /** Per-response hook (the soak samples latencies itself). */
  onResponse?: (ms: number, status: number) => void;
  /** Keep every latency sample (default true). */
  keepSamples?: boolean;
}

export interface LoadResult {
  connections: number;
  durationS: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  max: number;
  /** CPU of this (load generator) process during the run, % of one core. */
  genCpuPct: number;
  /** Server process: CPU ms per request served during the run. */
  cpuMsPerReq?: number;
  /** Server process: CPU % of one core during the run. */
  serverCpuPct?: number;
  served?: number;
  /** Server process: GC pause time per second of the run (ms/s), and the longest pause. */
  gcMsPerS?: number;
  gcMaxPauseMs?: number;
}

export async function runLoad(o: LoadOptions, server?: ServerProc): Promise<LoadResult> {
  const samples: number[] = [];
  const keep = o.keepSamples !== false;
  let non2xx = 0;
  const before = server ? await server.stats() : undefined;
  const genBefore = process.cpuUsage();
  const t0 = performance.now();
  const inst = autocannon({
    url: `https://127.0.0.1:${o.port}${o.path}`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: o.body,
    ...(o.requests ? { requests: o.requests } : {}),
    connections: o.connections,
    pipelining: 1,
    duration: o.durationS,
    timeout: 10,
    servername: 'localhost',
    ...(o.overallRate ? { overallRate: o.overallRate } : {}),
  });
  inst.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    if (status >= 200 && status < 300) {
      if (keep) samples.push(ms);
    } else non2xx++;
    o.onResponse?.(ms, status);
  });
  const r = await inst;
  const wallS = (performance.now() - t0) / 1000;
  const gen = process.cpuUsage(genBefore);
  const after = server ? await server.stats() : undefined;
  const s = Float64Array.from(samples).sort();
  const res: LoadResult = {
    connections: o.connections,
    durationS: r.duration,
    ok: r['2xx'],
    non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    rps: r['2xx'] / r.duration,
    p50: percentileSorted(s, 50),
    p90: percentileSorted(s, 90),
    p99: percentileSorted(s, 99),
    mean: s.length ? s.reduce((a, b) => a + b, 0) / s.length : Number.NaN,
    max: s.length ? s[s.length - 1]! : Number.NaN,
    genCpuPct: ((gen.user + gen.system) / 1000 / (wallS * 1000)) * 100,
  };
  if (before && after) {
    const cpuMs = (after.cpuUser - before.cpuUser + after.cpuSystem - before.cpuSystem) / 1000;
    res.served = after.served - before.served;
    res.cpuMsPerReq = res.served > 0 ? cpuMs / res.served : Number.NaN;
    res.serverCpuPct = (cpuMs / (wallS * 1000)) * 100;
    res.gcMsPerS = (after.gcMs - before.gcMs) / wallS;
    res.gcMaxPauseMs = after.gcMaxPauseMs;
  }
  return res;
}

/** One request with node:https (keep-alive off), for checking what a server answers before loading it. */
export function postOnce(port: number, path: string, body: string): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path, method: 'POST', rejectUnauthorized: false, servername: 'localhost', headers: { 'content-type': 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) });
          } catch {
            resolve({ status: res.statusCode ?? 0, json: text });
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
