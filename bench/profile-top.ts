// Summarises a V8 .cpuprofile (node --cpu-prof; `node bench/run.ts --cpu-prof`
// writes them for the webhook servers): the functions with the most self time
// and the most inclusive time, with their source location.
//
//   node bench/profile-top.ts FILE.cpuprofile [--top N] [--filter TEXT]
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' }, filter: { type: 'string' } } });
if (!positionals[0]) {
  process.stderr.write('usage: node bench/profile-top.ts FILE.cpuprofile [--top N] [--filter TEXT]\n');
  process.exit(2);
}
const p = JSON.parse(readFileSync(positionals[0], 'utf8')) as Profile;
const top = Number(values.top);
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// Self time per node from the samples and their time deltas (microseconds).
const selfUs = new Map<number, number>();
if (p.samples && p.timeDeltas) {
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0;
    selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + dt);
  }
} else {
  const per =
    (p.endTime - p.startTime) /
    Math.max(
      1,
      p.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0),
    );
  for (const n of p.nodes) selfUs.set(n.id, (n.hitCount ?? 0) * per);
}
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
const where = (n: ProfileNode) => {
  const f = n.callFrame;
  const url = f.url.startsWith('file://') ? relative(process.cwd(), f.url.slice(7)) : f.url;
  return `${f.functionName || '(anonymous)'} ${url ? `${url}:${f.lineNumber + 1}` : ''}`.trim();
};

const self = new Map<string, number>();
const incl = new Map<string, number>();
for (const n of p.nodes) {
  const us = selfUs.get(n.id) ?? 0;
  if (!us) continue;
  self.set(where(n), (self.get(where(n)) ?? 0) + us);
  // Inclusive: credit every distinct function on the stack once.
  const seen = new Set<string>();
  for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
    const k = where(byId.get(id)!);
    if (seen.has(k)) continue;
    seen.add(k);
    incl.set(k, (incl.get(k) ?? 0) + us);
  }
}
const show = (title: string, m: Map<string, number>) => {
  process.stdout.write(`${title}\n`);
  const rows = [...m.entries()]
    .filter(([k]) => !values.filter || k.includes(values.filter))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top);
  for (const [k, us] of rows) process.stdout.write(`  ${((us / total) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}\n`);
};
process.stdout.write(`${positionals[0]}: ${(total / 1000).toFixed(0)} ms sampled\n`);
show('self time', self);
show('inclusive time', incl);
