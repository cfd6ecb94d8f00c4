// npm run soak: the webhook app (in a child process, as in the benchmarks)
// under a steady load for N minutes, alternating the captured /mutate and
// /validate requests; RSS sampled every 10 s. Prints start, end and max RSS
// and the trend after the warm-up, and exits non-zero when memory grows
// beyond the noise bound below or any request fails.
//
//   node bench/soak.ts [--minutes 10] [--rate 200] [--connections 10] [--apps 100]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { machineInfo, machineLine, otherActivity } from './lib/context.ts';
import { MUTATE_FIXTURE } from './lib/fixtures.ts';
import { runLoad } from './lib/load.ts';
import { BENCH_DIR, ServerProc } from './lib/server-proc.ts';
import { fmt, fmtInt, mb, slope } from './lib/stats.ts';
import { checkAnswer, endpoints, selfSignedForBench } from './sections/admission.ts';
import type { WebhookStarted } from './servers/webhook.ts';

/**
 * Noise bound. V8 grows and shrinks its heap in steps of tens of MB: in the first
 * minutes under load it sizes its heap (committed heap 104 -> 167 MB, RSS 164 ->
 * 260 MB within 4 minutes, then flat for the rest of a 10-minute run), and later
 * it may hand 50 MB back and take it again. The same with this session's code
 * and the previous session's, run side by side; the JS heap after a forced GC
 * shrank in both. A slope fitted through such steps says more about when V8
 * resized than about leaks. What a leak does is raise the ceiling, so growth
 * counts as real when:
 *  - the highest RSS of the second half of the run is more than RSS_GROWTH_MB
 *    above the highest RSS of the first half (after the warm-up), or
 *  - the JS heap after a forced GC grew by more than HEAP_GROWTH_MB between the end
 *    of the warm-up and the end (what a leak of retained objects shows directly).
 * The RSS trend after the warm-up is printed for information.
 */
const RSS_GROWTH_MB = 8;
const HEAP_GROWTH_MB = 4;
const SAMPLE_S = 10;

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '200' },
    connections: { type: 'string', default: '10' },
    apps: { type: 'string', default: '100' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write('usage: node bench/soak.ts [--minutes 10] [--rate 200] [--connections 10] [--apps 100]\n');
  process.exit(0);
}
const minutes = Number(values.minutes);
const rate = Number(values.rate);
const connections = Number(values.connections);
const apps = Number(values.apps);
if (![minutes, rate, connections, apps].every((x) => Number.isFinite(x) && x > 0)) {
  process.stderr.write('soak: --minutes, --rate, --connections and --apps take positive numbers\n');
  process.exit(2);
}
const durationS = Math.round(minutes * 60);
/** The first minute, or the first quarter of a shorter run. */
const warmS = Math.min(60, durationS / 4);

const log = (m: string) => process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

const started = new Date();
const machine = machineInfo();
const tls = await selfSignedForBench();
const eps = endpoints();
const server = ServerProc.fork('webhook', { label: 'webhook server' });
const samples: { t: number; rssMB: number; heapMB: number; heapTotalMB: number; externalMB: number; served: number }[] = [];
let heapAtWarm = Number.NaN;
let heapAtEnd: number;
let load: Awaited<ReturnType<typeof runLoad>>;
try {
  const info = await server.call<WebhookStarted>('start', { cert: tls.cert, key: tls.key, fixture: MUTATE_FIXTURE, apps });
  for (const ep of eps) await checkAnswer(info.port, ep);
  log(`${machineLine(machine)}`);
  log(
    `webhook server pid ${server.pid}, ${info.apps} apps; ${rate} req/s over ${connections} connections for ${minutes} min (/mutate and /validate alternating)`,
  );
  const t0 = performance.now();
  const sample = async () => {
    const s = await server.stats();
    const t = (performance.now() - t0) / 1000;
    samples.push({ t, rssMB: mb(s.rss), heapMB: mb(s.heapUsed), heapTotalMB: mb(s.heapTotal), externalMB: mb(s.external), served: s.served });
    return samples[samples.length - 1]!;
  };
  await sample();
  let warmDone = false;
  const timer = setInterval(() => {
    void (async () => {
      const s = await sample();
      log(
        `t=${fmt(s.t, 0)} s  RSS ${fmt(s.rssMB, 1)} MB  heap ${fmt(s.heapMB, 1)} of ${fmt(s.heapTotalMB, 1)} MB  external ${fmt(s.externalMB, 1)} MB  served ${fmtInt(s.served)}`,
      );
      if (!warmDone && s.t >= warmS) {
        warmDone = true;
        heapAtWarm = mb((await server.call<{ heapUsed: number }>('gc')).heapUsed);
        log(`end of warm-up: heap after a forced GC ${fmt(heapAtWarm, 1)} MB`);
      }
    })().catch((e: Error) => log(`sample failed: ${e.message}`));
  }, SAMPLE_S * 1000);
  load = await runLoad(
    {
      port: info.port,
      path: '/mutate',
      body: eps[0]!.fixture.body,
      requests: eps.map((e) => ({ method: 'POST', path: e.path, headers: { 'content-type': 'application/json' }, body: e.fixture.body })),
      connections,
      durationS,
      overallRate: rate,
    },
    server,
  );
  clearInterval(timer);
  await sample();
  heapAtEnd = mb((await server.call<{ heapUsed: number }>('gc')).heapUsed);
} finally {
  await server.stop();
}

const others = [...new Set([...machine.otherActivity, ...otherActivity()])];
const measured = samples.filter((s) => s.t >= warmS);
const rssSlope = slope(measured.map((s) => ({ x: s.t / 60, y: s.rssMB })));
const windowMin = measured.length ? (measured[measured.length - 1]!.t - measured[0]!.t) / 60 : 0;
const trendGrowth = rssSlope * windowMin;
const half = durationS / 2;
const ceiling = (xs: typeof samples) => (xs.length ? Math.max(...xs.map((s) => s.rssMB)) : Number.NaN);
const firstCeiling = ceiling(measured.filter((s) => s.t < half));
const secondCeiling = ceiling(samples.filter((s) => s.t >= half));
const ceilingGrowth = secondCeiling - firstCeiling;
const heapGrowth = heapAtEnd - heapAtWarm;
const rssFail = !(ceilingGrowth <= RSS_GROWTH_MB);
const heapFail = !(heapGrowth <= HEAP_GROWTH_MB);
const failed = load.non2xx + load.errors + load.timeouts;
const start = samples[0]!;
const end = samples[samples.length - 1]!;
const max = samples.reduce((a, s) => (s.rssMB > a.rssMB ? s : a), start);
const out = [
  `kube-bluegreen soak, ${started.toISOString()}: ${minutes} min at ${rate} req/s (${connections} connections), /mutate and /validate alternating, ${apps} enrolled apps`,
  `machine: ${machineLine(machine)}`,
  ...(others.length ? [`note: other test or webhook processes ran on this machine during the soak:\n  ${others.join('\n  ')}`] : []),
  `requests: ${fmtInt(load.ok)} answered 2xx (${fmt(load.rps, 1)} req/s), ${load.non2xx} non-2xx, ${load.errors} errors, ${load.timeouts} timeouts; latency p50 ${fmt(load.p50)} ms, p99 ${fmt(load.p99)} ms, max ${fmt(load.max)} ms; server ${fmt(load.cpuMsPerReq, 3)} CPU ms/req`,
  `  (autocannon paces each connection on its own timer, so requests arrive in small bursts and the latency includes queueing within a burst)`,
  `RSS every ${SAMPLE_S} s (MB): ${samples.map((s) => fmt(s.rssMB, 1)).join(' ')}`,
  `RSS: start ${fmt(start.rssMB, 1)} MB, end ${fmt(end.rssMB, 1)} MB, max ${fmt(max.rssMB, 1)} MB (at ${fmt(max.t, 0)} s)`,
  `  of which V8 heap committed: start ${fmt(start.heapTotalMB, 1)} MB, end ${fmt(end.heapTotalMB, 1)} MB; outside the heap (external): start ${fmt(start.externalMB, 1)} MB, end ${fmt(end.externalMB, 1)} MB`,
  `RSS trend after the first ${fmt(warmS, 0)} s: ${fmt(rssSlope, 2)} MB/min over ${fmt(windowMin, 1)} min (${fmt(trendGrowth, 1)} MB; V8 sizing its heap shows here too)`,
  `RSS ceiling: highest ${fmt(firstCeiling, 1)} MB in the first half (after the warm-up), ${fmt(secondCeiling, 1)} MB in the second ` +
    `(${ceilingGrowth >= 0 ? '+' : ''}${fmt(ceilingGrowth, 1)} MB) -> ${rssFail ? 'GROWTH' : 'within noise'} (bound: ${RSS_GROWTH_MB} MB)`,
  `JS heap after a forced GC: ${fmt(heapAtWarm, 1)} MB after warm-up, ${fmt(heapAtEnd, 1)} MB at the end (${heapGrowth >= 0 ? '+' : ''}${fmt(heapGrowth, 2)} MB) ` +
    `-> ${heapFail ? 'GROWTH' : 'within noise'} (bound: ${HEAP_GROWTH_MB} MB)`,
  `result: ${rssFail || heapFail || failed ? 'FAIL' : 'PASS'}${failed ? ` (${failed} requests failed)` : ''}`,
];
const dir = join(BENCH_DIR, 'results');
mkdirSync(dir, { recursive: true });
const file = join(dir, `soak-${started.toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(
  file,
  `${JSON.stringify({ started: started.toISOString(), minutes, rate, connections, apps, machine, load, samples, warmS, rssSlope, trendGrowth, firstCeiling, secondCeiling, ceilingGrowth, heapAtWarm, heapAtEnd, bounds: { RSS_GROWTH_MB, HEAP_GROWTH_MB }, pass: !(rssFail || heapFail || failed) }, null, 2)}\n`,
);
out.push(`results: ${file}`);
process.stdout.write(`${out.join('\n')}\n`);
process.exitCode = rssFail || heapFail || failed ? 1 : 0;
