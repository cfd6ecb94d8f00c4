// 1. Admission throughput and latency: the real webhook app against a bare
// Node HTTPS JSON server, same certificate and keep-alive settings, fed the
// captured AdmissionReviews, at 1, 10 and 50 connections. Each server runs in
// its own child process; the load generator is this process. Runs alternate
// baseline, webhook, baseline, webhook... and the median of the repeats is
// reported.
import { generateSelfSigned, type CertPair } from '../../src/webhook/tls.ts';
import { type Config, progress, type SectionResult } from '../lib/context.ts';
import { loadCaptured, MUTATE_FIXTURE, VALIDATE_FIXTURE, type CapturedFixture } from '../lib/fixtures.ts';
import { type LoadResult, postOnce, runLoad } from '../lib/load.ts';
import { ServerProc } from '../lib/server-proc.ts';
import { fmt, fmtInt, fmtRatio, median, ratio } from '../lib/stats.ts';
import { table } from '../lib/table.ts';

export const THROUGHPUT_GOAL = 0.8;
export const P99_GOAL_MS = 5;

export async function selfSignedForBench(): Promise<CertPair> {
  return generateSelfSigned({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
}

export interface Endpoint {
  name: 'mutate' | 'validate';
  path: string;
  fixture: CapturedFixture;
  /** What the webhook answers it with (checked before the runs). */
  answer?: string;
}

/** Asks the webhook once and says what it decided; throws if it is not the expected outcome. */
export async function checkAnswer(port: number, ep: Endpoint): Promise<string> {
  const r = await postOnce(port, ep.path, ep.fixture.body);
  const res = r.json?.response;
  const size = Buffer.byteLength(JSON.stringify(r.json));
  if (r.status !== 200 || !res || res.uid !== ep.fixture.review.request.uid)
    throw new Error(`/${ep.name} with ${ep.fixture.file}: unexpected answer ${r.status} ${JSON.stringify(r.json).slice(0, 300)}`);
  if (ep.name === 'mutate') {
    if (!res.allowed || !res.patch || !res.auditAnnotations?.['redirected-to'])
      throw new Error(`/mutate with ${ep.fixture.file}: expected a redirect with a patch, got ${JSON.stringify(res).slice(0, 300)}`);
    const patch = JSON.parse(Buffer.from(res.patch, 'base64').toString('utf8')) as unknown[];
    return `allowed, redirected to ${res.auditAnnotations['redirected-to']} (dry run), JSON patch of ${patch.length} ops, ${res.warnings?.length ?? 0} warnings; ${size} B response`;
  }
  if (!res.allowed) throw new Error(`/validate with ${ep.fixture.file}: expected allowed, got ${JSON.stringify(res).slice(0, 300)}`);
  return `allowed; ${size} B response`;
}

export function endpoints(): Endpoint[] {
  return [
    { name: 'mutate', path: '/mutate', fixture: loadCaptured(MUTATE_FIXTURE) },
    { name: 'validate', path: '/validate', fixture: loadCaptured(VALIDATE_FIXTURE) },
  ];
}

interface Run extends LoadResult {
  endpoint: string;
  server: 'baseline' | 'control' | 'webhook';
  repeat: number;
}

interface Cell {
  endpoint: string;
  connections: number;
  baseline: Summary;
  /** A second, identical baseline server: how far two equal servers differ in one run (A/A). */
  control: Summary;
  webhook: Summary;
  ratio: { rps: number; p50: number; p99: number; cpuMsPerReq: number };
  /** control / baseline: the run's noise band for the ratio. */
  controlRatio: { rps: number; p50: number; p99: number; cpuMsPerReq: number };
  goals: { throughput: boolean; p99?: boolean };
}

interface Summary {
  rps: number;
  p50: number;
  p99: number;
  cpuMsPerReq: number;
  genCpuPct: number;
  serverCpuPct: number;
  non2xx: number;
  errors: number;
}

function summarize(runs: Run[]): Summary {
  const m = (f: (r: Run) => number) => median(runs.map(f));
  return {
    rps: m((r) => r.rps),
    p50: m((r) => r.p50),
    p99: m((r) => r.p99),
    cpuMsPerReq: m((r) => r.cpuMsPerReq ?? Number.NaN),
    genCpuPct: m((r) => r.genCpuPct),
    serverCpuPct: m((r) => r.serverCpuPct ?? Number.NaN),
    non2xx: runs.reduce((a, r) => a + r.non2xx, 0),
    errors: runs.reduce((a, r) => a + r.errors + r.timeouts, 0),
  };
}

const passMiss = (ok: boolean) => (ok ? 'PASS' : 'MISS');

export async function admissionSection(cfg: Config): Promise<SectionResult> {
  const tls = await selfSignedForBench();
  const eps = endpoints();
  const bare = ServerProc.fork('bare', {
    label: 'baseline server',
    execArgv: cfg.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cfg.cpuProfDir}`, '--cpu-prof-name=admission-baseline.cpuprofile'] : [],
  });
  const control = ServerProc.fork('bare', { label: 'control server (a second baseline)' });
  const hook = ServerProc.fork('webhook', {
    label: 'webhook server',
    execArgv: cfg.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cfg.cpuProfDir}`, '--cpu-prof-name=admission-webhook.cpuprofile'] : [],
  });
  const runs: Run[] = [];
  try {
    const { port: barePort } = await bare.call<{ port: number }>('start', { cert: tls.cert, key: tls.key });
    const { port: controlPort } = await control.call<{ port: number }>('start', { cert: tls.cert, key: tls.key });
    const { port: hookPort } = await hook.call<{ port: number }>('start', { cert: tls.cert, key: tls.key, fixture: MUTATE_FIXTURE, apps: 1 });
    for (const ep of eps) ep.answer = await checkAnswer(hookPort, ep);
    const servers = [
      { name: 'baseline' as const, proc: bare, port: barePort },
      { name: 'webhook' as const, proc: hook, port: hookPort },
      { name: 'control' as const, proc: control, port: controlPort },
    ];
    progress(`admission: warming up both servers (${cfg.warmupS} s per server and endpoint)`);
    for (const s of servers)
      for (const ep of eps) await runLoad({ port: s.port, path: ep.path, body: ep.fixture.body, connections: 10, durationS: cfg.warmupS, keepSamples: false });
    for (let rep = 1; rep <= cfg.repeats; rep++)
      for (const ep of eps)
        for (const c of cfg.connections)
          for (const s of servers) {
            const r = await runLoad({ port: s.port, path: ep.path, body: ep.fixture.body, connections: c, durationS: cfg.durationS }, s.proc);
            runs.push({ ...r, endpoint: ep.name, server: s.name, repeat: rep });
            progress(
              `admission ${rep}/${cfg.repeats}: /${ep.name} c=${c} ${s.name.padEnd(8)} ${fmtInt(r.rps)} req/s, p50 ${fmt(r.p50)} ms, p99 ${fmt(r.p99)} ms, ` +
                `${fmt(r.cpuMsPerReq, 3)} CPU ms/req, generator ${fmt(r.genCpuPct, 0)}% CPU${r.non2xx || r.errors ? `, ${r.non2xx} non-2xx, ${r.errors} errors` : ''}`,
            );
          }
    // Every /mutate request is a redirect: its checks (answered at once by the server's stand-in,
    // as this section measures the webhook's own cost) must have been asked.
    const checked = await hook.call<number>('redirects');
    if (checked === 0) throw new Error('the /mutate requests were not redirected: no redirect check was asked');
  } finally {
    await Promise.all([bare.stop(), control.stop(), hook.stop()]);
  }

  const cells: Cell[] = [];
  for (const ep of eps)
    for (const c of cfg.connections) {
      const of = (server: string) => runs.filter((r) => r.endpoint === ep.name && r.connections === c && r.server === server);
      const b = summarize(of('baseline'));
      const w = summarize(of('webhook'));
      const a = summarize(of('control'));
      const ratios = (x: Summary) => ({
        rps: ratio(x.rps, b.rps),
        p50: ratio(x.p50, b.p50),
        p99: ratio(x.p99, b.p99),
        cpuMsPerReq: ratio(x.cpuMsPerReq, b.cpuMsPerReq),
      });
      const rt = ratios(w);
      const goals: Cell['goals'] = { throughput: rt.rps >= THROUGHPUT_GOAL };
      if (c === 1) goals.p99 = w.p99 < P99_GOAL_MS;
      cells.push({ endpoint: ep.name, connections: c, baseline: b, control: a, webhook: w, ratio: rt, controlRatio: ratios(a), goals });
    }

  const rows: (string | number)[][] = [];
  for (const cell of cells) {
    const row = (label: string, s: Summary) => [
      `/${cell.endpoint}`,
      String(cell.connections),
      label,
      fmtInt(s.rps),
      fmt(s.p50),
      fmt(s.p99),
      fmt(s.cpuMsPerReq, 3),
      fmt(s.serverCpuPct, 0),
      fmt(s.genCpuPct, 0),
      s.non2xx + s.errors ? `${s.non2xx} non-2xx, ${s.errors} errors` : '',
    ];
    rows.push(row('baseline', cell.baseline));
    rows.push(row('control', cell.control));
    rows.push(row('webhook', cell.webhook));
    const ratioRow = (label: string, r: Cell['ratio'], note: string) => [
      `/${cell.endpoint}`,
      String(cell.connections),
      label,
      fmtRatio(r.rps),
      fmtRatio(r.p50),
      fmtRatio(r.p99),
      fmtRatio(r.cpuMsPerReq),
      '',
      '',
      note,
    ];
    rows.push(ratioRow('A/A', cell.controlRatio, 'control / baseline: two identical servers; how far apart noise alone puts them'));
    const goal = [`throughput >= ${THROUGHPUT_GOAL}x: ${passMiss(cell.goals.throughput)}`];
    if (cell.goals.p99 !== undefined) goal.push(`p99 < ${P99_GOAL_MS} ms: ${passMiss(cell.goals.p99)}`);
    rows.push(ratioRow('ratio', cell.ratio, `${goal.join('; ')}; +${fmt(cell.webhook.cpuMsPerReq - cell.baseline.cpuMsPerReq, 3)} CPU ms/req`));
  }
  const kb = (s: string) => (Buffer.byteLength(s) / 1024).toFixed(1);
  const text = [
    `Requests: ${eps.map((e) => `/${e.name} ${e.fixture.file} (${kb(e.fixture.body)} KB body; webhook answers: ${e.answer})`).join('\n          ')}`,
    `Baseline: bare node:https server, same certificate and keep-alive settings, JSON.parse of the body, fixed allow with the uid.`,
    `Control: a second, identical baseline server; its ratio to the baseline (A/A) is the noise band of every ratio in the table.`,
    `Median of ${cfg.repeats} runs of ${cfg.durationS} s each (baseline, webhook and control alternating), after ${cfg.warmupS} s warm-up per server and endpoint.`,
    `CPU ms/req and srv CPU% are the server process's (process.cpuUsage); gen CPU% is the load generator's (autocannon, one core at most).`,
    '',
    table(['endpoint', 'conns', 'server', 'req/s', 'p50 ms', 'p99 ms', 'CPU ms/req', 'srv CPU%', 'gen CPU%', 'goal / notes'], rows),
  ].join('\n');
  const goals: Record<string, boolean> = {};
  for (const c of cells) {
    goals[`/${c.endpoint} c=${c.connections} throughput >= ${THROUGHPUT_GOAL}x baseline`] = c.goals.throughput;
    if (c.goals.p99 !== undefined) goals[`/${c.endpoint} c=1 p99 < ${P99_GOAL_MS} ms`] = c.goals.p99;
  }
  return {
    name: 'admission',
    title: '1. Admission throughput and latency (webhook app vs bare Node HTTPS JSON server)',
    text,
    goals,
    data: {
      requests: eps.map((e) => ({ endpoint: e.name, fixture: e.fixture.file, bodyBytes: Buffer.byteLength(e.fixture.body), answer: e.answer })),
      durationS: cfg.durationS,
      repeats: cfg.repeats,
      warmupS: cfg.warmupS,
      cells,
      runs,
    },
  };
}
