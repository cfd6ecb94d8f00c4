// 5. Status: `kubectl bg status APP` (the single executable, and the same on Node) side by side
// with `kubectl get deploy,svc -l bluegreen.io/app=APP`, the nearest thing kubectl shows; and
// start-up alone (--version / kubectl version --client). Each run is a new process, interleaved.
import { spawn } from 'node:child_process';
import { ensureExe, NODE, PLUGIN } from '../lib/exe.ts';
import { type Config, progress, type SectionResult } from '../lib/context.ts';
import { fmt, median, percentile, ratio } from '../lib/stats.ts';
import { table } from '../lib/table.ts';
import { clusterBench, SWITCH_APPS } from './cluster.ts';

function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.on('error', reject);
    c.on('exit', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.slice(-500)}`))));
  });
}

export async function statusSection(cfg: Config): Promise<SectionResult> {
  const exe = ensureExe();
  const c = await clusterBench();
  const ns = c.namespace;
  const app = SWITCH_APPS.enrolled;
  const env = {
    ...process.env,
    NO_PROXY: '127.0.0.1,localhost',
    no_proxy: '127.0.0.1,localhost',
    HOME: c.env.home,
    KUBECONFIG: c.env.kubeconfig,
    NO_COLOR: '1',
  };
  const bgArgs = ['status', app, '-n', ns, '--kubeconfig', c.env.kubeconfig];
  const subjects: Record<string, [string, string[], NodeJS.ProcessEnv]> = {
    'kubectl bg status (exe)': [exe, bgArgs, env],
    'kubectl bg status (node, compile cache warm)': [NODE, [PLUGIN, ...bgArgs], env],
    'kubectl bg status (node, no compile cache)': [NODE, [PLUGIN, ...bgArgs], { ...env, NODE_DISABLE_COMPILE_CACHE: '1' }],
    'kubectl get deploy,svc -l bluegreen.io/app=APP': [
      c.env.kubectl,
      ['--kubeconfig', c.env.kubeconfig, '-n', ns, 'get', 'deploy,svc', '-l', `bluegreen.io/app=${app}`],
      env,
    ],
    'kubectl-bg --version (exe)': [exe, ['--version'], env],
    'kubectl-bg --version (node, compile cache warm)': [NODE, [PLUGIN, '--version'], env],
    'kubectl version --client': [c.env.kubectl, ['version', '--client'], env],
  };
  const names = Object.keys(subjects);
  const runs = cfg.quick ? 5 : Math.max(20, cfg.switches);
  const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  progress(`status: warm-up, then ${runs} runs of each, interleaved`);
  for (const n of names) await timed(...subjects[n]!);
  for (let i = 0; i < runs; i++) {
    // Rotate the order so no subject always follows the same one.
    for (let k = 0; k < names.length; k++) {
      const n = names[(i + k) % names.length]!;
      times[n]!.push(await timed(...subjects[n]!));
    }
  }
  const base = median(times['kubectl get deploy,svc -l bluegreen.io/app=APP']!);
  const baseVersion = median(times['kubectl version --client']!);
  const rows = names.map((n) => {
    const xs = times[n]!;
    const vs = n.includes('version') ? baseVersion : base;
    return [
      n,
      String(xs.length),
      fmt(median(xs), 0),
      fmt(percentile(xs, 90), 0),
      n.startsWith('kubectl get') || n === 'kubectl version --client' ? '1' : `${fmt(ratio(median(xs), vs))}x`,
    ];
  });
  const exeMed = median(times['kubectl bg status (exe)']!);
  const goal = ratio(exeMed, base);
  const text = [
    `${runs} runs of each, interleaved, each a new process; app ${app} (2 Deployments, 2 ready pods each, 1 Service), ms from spawn to exit.`,
    `  exe: dist/bin/kubectl-bg-${process.platform}-${process.arch} (Node embedded, V8 code cache in the executable); node: node_modules/.bin/node plugin/src/main.ts`,
    '',
    table(['ms', 'n', 'median', 'p90', 'ratio to kubectl'], rows),
    '',
    '  ratio to kubectl: status rows against kubectl get deploy,svc; --version rows against kubectl version --client.',
  ].join('\n');
  return {
    name: 'status',
    title: '5. Status: kubectl bg status vs kubectl get deploy,svc, and start-up alone',
    text,
    goals: { [`kubectl bg status (exe) at most 2x kubectl get deploy,svc -l bluegreen.io/app=APP (median ${fmt(goal)}x)`]: goal <= 2 },
    data: { namespace: ns, app, runs, times },
  };
}
