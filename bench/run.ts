// npm run bench: kube-bluegreen's benchmarks, each figure side by side with its
// baseline from the same run. Prints a table per section and writes everything
// measured to bench/results/<timestamp>.json.
//
//   node bench/run.ts [--quick] [--only admission,scale,apiserver,switch,status]
//                     [--duration S] [--repeats N] [--warmup S] [--patches N] [--switches N] [--cpu-prof]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type Config, machineInfo, machineLine, otherActivity, progress, SECTIONS, type SectionName, type SectionResult } from './lib/context.ts';
import { BENCH_DIR } from './lib/server-proc.ts';
import { admissionSection } from './sections/admission.ts';
import { apiserverSection } from './sections/apiserver.ts';
import { memorySection } from './sections/memory.ts';
import { closeClusterBench } from './sections/cluster.ts';
import { scaleSection } from './sections/scale.ts';
import { statusSection } from './sections/status.ts';
import { switchSection } from './sections/switch.ts';

const HELP = `usage: node bench/run.ts [options]     (all sections: about 10 minutes)

  --quick              short runs (under 2 minutes): for checking the benchmark itself, not for figures
  --only LIST          sections to run, comma-separated: ${SECTIONS.join(',')} (default: all)
  --duration S         seconds per measured load run (default 4; quick 1.5)
  --repeats N          measured runs per configuration, baseline and subject alternating (default 5; quick 1)
  --warmup S           seconds of warm-up load per server and request (default 3; quick 1)
  --patches N          PATCHes of each kind through the apiserver (default 200; quick 20)
  --switches N         switches and bare selector patches (default 20; quick 4)
  --connections LIST   connection counts for the admission section, comma-separated (default 1,10,50)
  --cpu-prof           profile the webhook server processes (node --cpu-prof) into bench/results/profiles-<time>/
  -h, --help

Sections apiserver, switch and status need the local control plane (started if it is not running: local-cluster).`;

function config(argv: string[]): Config {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      duration: { type: 'string' },
      repeats: { type: 'string' },
      warmup: { type: 'string' },
      patches: { type: 'string' },
      switches: { type: 'string' },
      connections: { type: 'string' },
      'cpu-prof': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    process.exit(0);
  }
  const q = values.quick;
  const num = (name: string, v: string | undefined, dflt: number) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} ${v}: expected a positive number`);
    return n;
  };
  const only = values.only
    ? values.only
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : [...SECTIONS];
  for (const s of only) if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`--only ${s}: sections are ${SECTIONS.join(', ')}`);
  return {
    quick: q,
    only: only as SectionName[],
    durationS: num('duration', values.duration, q ? 1.5 : 4),
    repeats: Math.round(num('repeats', values.repeats, q ? 1 : 5)),
    warmupS: num('warmup', values.warmup, q ? 1 : 3),
    connections: values.connections ? values.connections.split(',').map((c) => Math.round(num('connections', c, 1))) : [1, 10, 50],
    scaleSizes: [10, 100, 1_000, 10_000],
    scaleConnections: q ? [10] : [1, 10],
    patches: Math.round(num('patches', values.patches, q ? 20 : 200)),
    switches: Math.round(num('switches', values.switches, q ? 4 : 20)),
  };
}

const RUNNERS: Record<SectionName, (c: Config) => Promise<SectionResult>> = {
  admission: admissionSection,
  scale: scaleSection,
  apiserver: apiserverSection,
  switch: switchSection,
  status: statusSection,
  memory: memorySection,
};

async function main() {
  let cfg: Config;
  try {
    cfg = config(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n\n${HELP}\n`);
    process.exit(2);
  }
  const started = new Date();
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const resultsDir = join(BENCH_DIR, 'results');
  mkdirSync(resultsDir, { recursive: true });
  if (process.argv.includes('--cpu-prof')) {
    cfg.cpuProfDir = join(resultsDir, `profiles-${stamp}`);
    mkdirSync(cfg.cpuProfDir, { recursive: true });
  }
  const machineBefore = machineInfo();
  progress(`${machineLine(machineBefore)}; sections: ${cfg.only.join(', ')}${cfg.quick ? ' (quick)' : ''}`);
  const results: SectionResult[] = [];
  try {
    for (const name of cfg.only) {
      const t0 = performance.now();
      progress(`section ${name}`);
      try {
        const r = await RUNNERS[name](cfg);
        results.push(r);
      } catch (e) {
        const msg = (e as Error).stack ?? String(e);
        progress(`section ${name} failed: ${msg}`);
        results.push({ name, title: name, text: `  FAILED: ${(e as Error).message}`, data: undefined, error: msg });
      }
      progress(`section ${name} took ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    }
  } finally {
    await closeClusterBench();
  }
  const finished = new Date();
  const machineAfter = { loadavg: machineInfo().loadavg, otherActivity: otherActivity() };
  const others = [...new Set([...machineBefore.otherActivity, ...machineAfter.otherActivity])];

  const out: string[] = [];
  out.push(`kube-bluegreen benchmarks, ${started.toISOString()} (${((finished.getTime() - started.getTime()) / 60_000).toFixed(1)} min)`);
  out.push(`command: node bench/run.ts ${process.argv.slice(2).join(' ')}`.trimEnd());
  out.push(`machine: ${machineLine(machineBefore)}; load average at the end ${machineAfter.loadavg.join(' ')}`);
  if (others.length)
    out.push(
      `note: other test or webhook processes ran on this machine during the run; figures are noisier than on an idle machine:\n  ${others.join('\n  ')}`,
    );
  if (cfg.quick) out.push('note: --quick: short runs, one repeat; for checking the benchmark, not for figures');
  for (const r of results) out.push('', r.title, r.text);
  const goals = results.flatMap((r) => Object.entries(r.goals ?? {}));
  if (goals.length) {
    out.push('', 'Goals');
    for (const [k, ok] of goals) out.push(`  ${ok ? 'PASS' : 'MISS'}  ${k}`);
  }
  const file = join(resultsDir, `${stamp}.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ started: started.toISOString(), finished: finished.toISOString(), argv: process.argv.slice(2), config: cfg, machine: { ...machineBefore, after: machineAfter }, sections: results }, null, 2)}\n`,
  );
  out.push('', `results: ${file}`);
  if (cfg.cpuProfDir) out.push(`profiles: ${cfg.cpuProfDir} (summarise with: node bench/profile-top.ts FILE)`);
  process.stdout.write(`${out.join('\n')}\n`);
  if (results.some((r) => r.error)) process.exitCode = 1;
}

await main();
