// The child side of a benchmark server: answers the parent's requests over
// the IPC channel ({id, op, args} -> {id, ok, result | error}), and the
// measurements every server reports (CPU time, memory, requests served).
import type { Server } from 'node:https';
import { PerformanceObserver } from 'node:perf_hooks';

export type Handlers = Record<string, (args: any) => unknown>;

export interface ServerStats {
  /** process.cpuUsage(), microseconds. */
  cpuUser: number;
  cpuSystem: number;
  rss: number;
  heapUsed: number;
  /** V8 heap committed (used or not) and memory outside it (Buffers, TLS): where RSS beyond heapUsed sits. */
  heapTotal: number;
  external: number;
  /** HTTP requests received since start. */
  served: number;
  /** Garbage collection: total pause time (ms) and count since start, longest pause since the previous stats(). */
  gcMs: number;
  gcCount: number;
  gcMaxPauseMs: number;
}

let served = 0;
let gcMs = 0;
let gcCount = 0;
let gcMaxPauseMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcMs += e.duration;
    gcCount++;
    if (e.duration > gcMaxPauseMs) gcMaxPauseMs = e.duration;
  }
}).observe({ entryTypes: ['gc'] });

/** Counts every request the server receives (same cost for every server under test). */
export function countRequests(server: Server): void {
  server.on('request', () => {
    served++;
  });
}

export function stats(): ServerStats {
  const cpu = process.cpuUsage();
  const m = process.memoryUsage();
  const maxPause = gcMaxPauseMs;
  gcMaxPauseMs = 0;
  return {
    cpuUser: cpu.user,
    cpuSystem: cpu.system,
    rss: m.rss,
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    external: m.external,
    served,
    gcMs,
    gcCount,
    gcMaxPauseMs: maxPause,
  };
}

/** Full collections when the process runs with --expose-gc; then the memory figures. */
export function collect(): { rss: number; heapUsed: number; gc: boolean } {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  gcMaxPauseMs = 0;
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, gc: !!gc };
}

export function serveIpc(handlers: Handlers): void {
  if (!process.send) throw new Error('a benchmark server runs as a child process with an IPC channel (child_process.fork)');
  const all: Handlers = { stats, gc: collect, ...handlers };
  process.on('message', (m: { id: number; op: string; args?: unknown }) => {
    void (async () => {
      try {
        const fn = all[m.op];
        if (!fn) throw new Error(`unknown op ${m.op}`);
        const result = await fn(m.args);
        process.send!({ id: m.id, ok: true, result });
      } catch (e) {
        process.send!({ id: m.id, ok: false, error: (e as Error).stack ?? String(e) });
      }
    })();
  });
  // The parent going away ends the child.
  process.on('disconnect', () => process.exit(0));
}
