// What every section runs with: the configuration from the command line,
// progress on stderr, and a note of the machine and of anything else running
// on it (these machines are shared: other test runs make the figures noisy).
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

export const SECTIONS = ['admission', 'scale', 'apiserver', 'switch', 'status', 'memory'] as const;
export type SectionName = (typeof SECTIONS)[number];

export interface Config {
  quick: boolean;
  only: SectionName[];
  /** Seconds per measured load run. */
  durationS: number;
  /** Seconds of warm-up load per server and request before measuring. */
  warmupS: number;
  /** Measured runs of each configuration (baseline and subject interleaved). */
  repeats: number;
  connections: number[];
  scaleSizes: number[];
  scaleConnections: number[];
  /** PATCHes of each kind through the apiserver. */
  patches: number;
  /** Switches (and bare selector patches) through the apiserver. */
  switches: number;
  /** Profile the webhook server children (node --cpu-prof) into this directory. */
  cpuProfDir?: string;
}

export interface SectionResult {
  name: SectionName;
  title: string;
  /** The printed table and notes. */
  text: string;
  /** Everything measured, for the JSON file. */
  data: unknown;
  /** Goal verdicts, e.g. { 'mutate c=1 p99 < 5 ms': true }. */
  goals?: Record<string, boolean>;
  error?: string;
}

export function progress(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memTotalMB: number;
  node: string;
  platform: string;
  kernel: string;
  loadavg: number[];
  /** Other processes that load the machine (test runners, other benchmarks), by command line. */
  otherActivity: string[];
}

/** Test runners, webhooks and benchmarks started by others (not this process or its children). */
export function otherActivity(): string[] {
  const mine = new Set([process.pid, process.ppid]);
  const found: string[] = [];
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return found;
  }
  for (const p of pids) {
    const pid = Number(p);
    if (mine.has(pid)) continue;
    let cmd: string;
    let ppid: number;
    try {
      cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ').trim();
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      continue;
    }
    if (ppid === process.pid) continue;
    if (/vitest|src\/webhook\/main\.ts|bench\/(run|soak)\.ts|tsc /.test(cmd) && !/^(sh|bash) -c/.test(cmd)) found.push(`${pid}: ${cmd.slice(0, 120)}`);
  }
  return found;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    nproc: os.availableParallelism(),
    cpuModel: cpus[0]?.model ?? 'unknown',
    memTotalMB: Math.round(os.totalmem() / 2 ** 20),
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    kernel: os.release(),
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
    otherActivity: otherActivity(),
  };
}

export function machineLine(m: MachineInfo): string {
  return `${m.nproc} CPUs (${m.cpuModel}), ${Math.round(m.memTotalMB / 1024)} GiB, Node ${m.node}, ${m.platform}, load average ${m.loadavg.join(' ')}`;
}
