// 2. Scale: the same mutate request with 10, 100, 1,000 and 10,000 enrolled
// apps in the webhook's store (the request's own app plus clones of it under
// other names and namespaces). One webhook child per size, plus a second
// 10-app child as an A/A control: its difference from the first is this
// machine's noise floor. All are started before measuring; each repeat starts
// the rotation at a different server (every server takes every position once
// in as many repeats as there are servers), and the median of the repeats is
// reported. Memory: RSS and heap after a forced GC, filled minus empty, per
// 1,000 apps.
import { type Config, progress, type SectionResult } from '../lib/context.ts';
import { MUTATE_FIXTURE } from '../lib/fixtures.ts';
import { type LoadResult, runLoad } from '../lib/load.ts';
import { ServerProc } from '../lib/server-proc.ts';
import { fmt, fmtInt, fmtPct, mb, median } from '../lib/stats.ts';
import { table } from '../lib/table.ts';
import type { WebhookStarted } from '../servers/webhook.ts';
import { checkAnswer, endpoints, selfSignedForBench } from './admission.ts';

export const SPREAD_GOAL = 0.1;

interface Run extends LoadResult {
  server: string;
  apps: number;
  repeat: number;
}

interface Server {
  /** "10", "100", ... or "10 (A/A)". */
  name: string;
  apps: number;
  control: boolean;
  proc: ServerProc;
  port: number;
  started?: WebhookStarted;
}

export async function scaleSection(cfg: Config): Promise<SectionResult> {
  const tls = await selfSignedForBench();
  const ep = endpoints().find((e) => e.name === 'mutate')!;
  const base = cfg.scaleSizes[0]!;
  const specs = [...cfg.scaleSizes.map((apps) => ({ apps, control: false })), { apps: base, control: true }];
  const servers: Server[] = specs.map(({ apps, control }) => {
    const name = control ? `${fmtInt(apps)} (A/A)` : fmtInt(apps);
    return {
      name,
      apps,
      control,
      port: 0,
      proc: ServerProc.fork('webhook', {
        label: `webhook server (${name} apps)`,
        execArgv: cfg.cpuProfDir
          ? ['--cpu-prof', `--cpu-prof-dir=${cfg.cpuProfDir}`, `--cpu-prof-name=scale-${apps}${control ? '-control' : ''}.cpuprofile`]
          : [],
      }),
    };
  });
  const runs: Run[] = [];
  try {
    for (const s of servers) {
      const t0 = performance.now();
      s.started = await s.proc.call<WebhookStarted>('start', { cert: tls.cert, key: tls.key, fixture: MUTATE_FIXTURE, apps: s.apps });
      s.port = s.started.port;
      await checkAnswer(s.port, ep);
      progress(
        `scale: ${s.name} apps (${s.started.objects} objects) filled in ${fmt((performance.now() - t0) / 1000, 1)} s; ` +
          `RSS ${fmt(mb(s.started.memory.filled.rss), 1)} MB (empty ${fmt(mb(s.started.memory.empty.rss), 1)} MB)`,
      );
    }
    progress(`scale: warming up (${cfg.warmupS} s per server)`);
    for (const s of servers) await runLoad({ port: s.port, path: ep.path, body: ep.fixture.body, connections: 10, durationS: cfg.warmupS, keepSamples: false });
    for (let rep = 1; rep <= cfg.repeats; rep++) {
      const k = (rep - 1) % servers.length;
      const order = [...servers.slice(k), ...servers.slice(0, k)];
      for (const c of cfg.scaleConnections)
        for (const s of order) {
          const r = await runLoad({ port: s.port, path: ep.path, body: ep.fixture.body, connections: c, durationS: cfg.durationS }, s.proc);
          runs.push({ ...r, server: s.name, apps: s.apps, repeat: rep });
          progress(
            `scale ${rep}/${cfg.repeats}: ${s.name.padStart(8)} apps c=${c}: ${fmtInt(r.rps)} req/s, p50 ${fmt(r.p50)} ms, p99 ${fmt(r.p99)} ms, ${fmt(r.cpuMsPerReq, 3)} CPU ms/req`,
          );
        }
    }
  } finally {
    await Promise.all(servers.map((s) => s.proc.stop()));
  }

  const rows: string[][] = [];
  const goals: Record<string, boolean> = {};
  const summaries: unknown[] = [];
  const keys = ['rps', 'p50', 'p99', 'cpu'] as const;
  type Key = (typeof keys)[number];
  const verdict = (x: number) => `${fmtPct(x).replace('+', '')} ${x <= SPREAD_GOAL ? 'PASS' : 'MISS'}`;
  for (const c of cfg.scaleConnections) {
    const sum = (name: string) => {
      const rs = runs.filter((r) => r.server === name && r.connections === c);
      return {
        rps: median(rs.map((r) => r.rps)),
        p50: median(rs.map((r) => r.p50)),
        p99: median(rs.map((r) => r.p99)),
        cpu: median(rs.map((r) => r.cpuMsPerReq ?? Number.NaN)),
        gcMsPerS: median(rs.map((r) => r.gcMsPerS ?? Number.NaN)),
        gcMaxPauseMs: median(rs.map((r) => r.gcMaxPauseMs ?? Number.NaN)),
        bad: rs.reduce((a, r) => a + r.non2xx + r.errors + r.timeouts, 0),
      };
    };
    const b = sum(servers[0]!.name);
    const worst: Record<Key, number> = { rps: 0, p50: 0, p99: 0, cpu: 0 };
    let noise: Record<Key, number> = { rps: Number.NaN, p50: Number.NaN, p99: Number.NaN, cpu: Number.NaN };
    for (const s of servers) {
      const x = sum(s.name);
      const d = Object.fromEntries(keys.map((k) => [k, (x[k] - b[k]) / b[k]])) as Record<Key, number>;
      if (s.control) noise = Object.fromEntries(keys.map((k) => [k, Math.abs(d[k])])) as Record<Key, number>;
      else if (s !== servers[0]) for (const k of keys) worst[k] = Math.max(worst[k], Math.abs(d[k]));
      summaries.push({ connections: c, server: s.name, apps: s.apps, control: s.control, ...x, vsBase: d });
      rows.push([
        String(c),
        s.name,
        fmtInt(x.rps),
        fmt(x.p50),
        fmt(x.p99),
        fmt(x.cpu, 3),
        fmt(x.gcMsPerS, 0),
        fmt(x.gcMaxPauseMs, 1),
        ...(s === servers[0] ? ['', '', '', ''] : keys.map((k) => fmtPct(d[k]))),
        [s.control ? 'A/A control: the same 10 apps in another process (noise floor)' : '', x.bad ? `${x.bad} failed` : ''].filter(Boolean).join('; '),
      ]);
    }
    for (const k of ['rps', 'p50', 'p99'] as const)
      goals[`scale c=${c} ${k === 'rps' ? 'req/s' : k} within ${SPREAD_GOAL * 100}% of ${base} apps (A/A noise ${fmtPct(noise[k]).replace('+', '')})`] =
        worst[k] <= SPREAD_GOAL;
    rows.push([
      String(c),
      'spread',
      '',
      '',
      '',
      '',
      '',
      '',
      verdict(worst.rps),
      verdict(worst.p50),
      verdict(worst.p99),
      fmtPct(worst.cpu).replace('+', ''),
      `largest |difference| from ${base} apps (goal <= ${SPREAD_GOAL * 100}% for req/s, p50, p99)`,
    ]);
  }
  const memRows = servers
    .filter((s) => !s.control)
    .map((s) => {
      const m = s.started!.memory;
      const rss = m.filled.rss - m.empty.rss;
      const heap = m.filled.heapUsed - m.empty.heapUsed;
      return {
        apps: s.apps,
        objects: s.started!.objects,
        rssEmptyMB: mb(m.empty.rss),
        rssFilledMB: mb(m.filled.rss),
        rssPer1000MB: (mb(rss) / s.apps) * 1000,
        heapPer1000MB: (mb(heap) / s.apps) * 1000,
        gc: m.gc,
      };
    });
  const biggest = memRows[memRows.length - 1]!;
  const text = [
    `Request: /mutate ${ep.fixture.file} (${(Buffer.byteLength(ep.fixture.body) / 1024).toFixed(1)} KB). Each size in its own webhook process, plus a second ${base}-app`,
    `process as an A/A control (its difference from the first is the noise floor of this machine). Median of ${cfg.repeats} runs of ${cfg.durationS} s;`,
    `differences are against the ${base}-app case. GC ms/s: the server's GC pause time per second of load; max GC ms: its longest pause in a run (median).`,
    '',
    table(
      [
        'conns',
        'apps',
        'req/s',
        'p50 ms',
        'p99 ms',
        'CPU ms/req',
        'GC ms/s',
        'max GC ms',
        'req/s vs base',
        'p50 vs base',
        'p99 vs base',
        'CPU vs base',
        'notes',
      ],
      rows,
    ),
    '',
    table(
      ['apps', 'objects', 'RSS empty MB', 'RSS filled MB', 'RSS per 1,000 apps MB', 'heap per 1,000 apps MB'],
      memRows.map((m) => [fmtInt(m.apps), fmtInt(m.objects), fmt(m.rssEmptyMB, 1), fmt(m.rssFilledMB, 1), fmt(m.rssPer1000MB, 2), fmt(m.heapPer1000MB, 2)]),
    ),
    `  Memory per 1,000 enrolled apps (2 Deployments + 1 Service each, measured at ${fmtInt(biggest.apps)} apps, after a forced GC${biggest.gc ? '' : ' (NOT available)'}): ` +
      `RSS ${fmt(biggest.rssPer1000MB, 2)} MB, JS heap ${fmt(biggest.heapPer1000MB, 2)} MB.`,
    `  (RSS empty includes Node's TypeScript stripping: the benchmark servers run the .ts sources. Small sizes are below RSS's page granularity.)`,
  ].join('\n');
  return {
    name: 'scale',
    title: '2. Scale: /mutate with 10 to 10,000 enrolled apps in the cache',
    text,
    goals,
    data: { fixture: ep.fixture.file, sizes: cfg.scaleSizes, connections: cfg.scaleConnections, summaries, memory: memRows, runs },
  };
}
