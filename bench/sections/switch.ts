// 4. Switch: from starting `kubectl bg switch` (as a user runs it: a new Node
// process) until the Service's EndpointSlices hold only the new colour's ready
// pods, against a bare `kubectl patch` of a plain Service's selector. Timed
// with watches (Service, EndpointSlices, Deployments), not polling; both
// alternate blue/green and are interleaved.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Deployment, Service } from '../../src/core/k8s-types.ts';
import { LIVE_LABEL } from '../../src/core/labels.ts';
import { paths } from '../../src/kube/client.ts';
import { type Config, progress, type SectionResult } from '../lib/context.ts';
import { REPO } from '../lib/server-proc.ts';
import { fmt, median, percentile, ratio } from '../lib/stats.ts';
import { table } from '../lib/table.ts';
import { LiveObjects } from '../lib/watch.ts';
import { type ClusterBench, clusterBench, otherWebhooksNote, refreshOtherWebhooks, SWITCH_APPS } from './cluster.ts';

type Colour = 'blue' | 'green';

interface Slice {
  metadata: { name?: string; resourceVersion?: string; labels?: Record<string, string> };
  endpoints?: { conditions?: { ready?: boolean }; targetRef?: { kind?: string; name?: string } }[];
}
interface Pod {
  metadata: { name?: string; labels?: Record<string, string>; deletionTimestamp?: string };
  status?: { conditions?: { type: string; status: string }[] };
}

interface Measure {
  how: 'plugin' | 'kubectl';
  to: Colour;
  /** Process start to exit. */
  cliMs: number;
  /** plugin: start to its first write (the new colour's live label). */
  firstWriteMs?: number;
  /** Start to the Service's selector change (seen on the watch). */
  selectorMs: number;
  /** Selector change to the slices holding only the new colour's ready pods. */
  propagationMs: number;
  /** Start to the slices holding only the new colour's ready pods. */
  totalMs: number;
}

const NODE = join(REPO, 'node_modules/.bin/node');
const PLUGIN = join(REPO, 'plugin/src/main.ts');

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string; exitAt: number }> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('error', reject);
    c.on('exit', (code, sig) => resolve({ code: code ?? (sig ? 128 : 1), out, exitAt: performance.now() }));
  });
}

export async function switchSection(cfg: Config): Promise<SectionResult> {
  const c: ClusterBench = await clusterBench();
  const ns = c.namespace;
  const { enrolled: app, plain: flip } = SWITCH_APPS;
  const noProxy = { NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost' };
  const pluginEnv = { ...process.env, ...noProxy };
  const kubectlEnv = { ...process.env, ...noProxy, HOME: c.env.home, KUBECONFIG: c.env.kubeconfig };

  const services = new LiveObjects<Service>(c.client, paths.services(ns));
  const slices = new LiveObjects<Slice>(c.client, paths.endpointSlices(ns), { labelSelector: `kubernetes.io/service-name in (${app},${flip})` });
  const deployments = new LiveObjects<Deployment>(c.client, paths.deployments(ns), { labelSelector: `bluegreen.io/app=${app}` });
  await Promise.all([services.start(), slices.start(), deployments.start()]);

  const readyPods = async (appName: string, colour: Colour): Promise<Set<string>> => {
    const l = await c.client.list<Pod>(`/api/v1/namespaces/${ns}/pods`, { labelSelector: `app=${appName},slot=${colour}` });
    return new Set(
      l.items
        .filter((p) => !p.metadata.deletionTimestamp && p.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True'))
        .map((p) => p.metadata.name ?? ''),
    );
  };
  const settled = (svc: string, want: Set<string>) => (objs: ReadonlyMap<string, Slice>) => {
    const names = new Set<string>();
    for (const s of objs.values()) {
      if (s.metadata.labels?.['kubernetes.io/service-name'] !== svc) continue;
      for (const e of s.endpoints ?? []) {
        const n = e.targetRef?.name;
        if (e.conditions?.ready !== true || !n || !want.has(n)) return false;
        names.add(n);
      }
    }
    return names.size === want.size;
  };
  const selectorIs = (svc: string, to: Colour) => (objs: ReadonlyMap<string, Service>) => objs.get(svc)?.spec?.selector?.slot === to;
  const colourNow = (svc: string): Colour => (services.objects.get(svc)?.spec?.selector?.slot === 'green' ? 'green' : 'blue');

  const measure = async (how: 'plugin' | 'kubectl'): Promise<Measure> => {
    const svc = how === 'plugin' ? app : flip;
    const to: Colour = colourNow(svc) === 'blue' ? 'green' : 'blue';
    const want = await readyPods(svc, to);
    if (want.size === 0) throw new Error(`${svc}: no ready ${to} pods to switch to`);
    const sel = services.when(selectorIs(svc, to));
    const settle = slices.when(settled(svc, want));
    const first = how === 'plugin' ? deployments.when((o) => o.get(`${app}-${to}`)?.metadata.labels?.[LIVE_LABEL] === 'true') : undefined;
    const t0 = performance.now();
    const r =
      how === 'plugin'
        ? await run(NODE, [PLUGIN, 'switch', app, '-n', ns, '--kubeconfig', c.env.kubeconfig], pluginEnv)
        : await run(c.env.kubectl, ['--kubeconfig', c.env.kubeconfig, '-n', ns, 'patch', 'service', flip, '--type', 'merge', '-p', JSON.stringify({ spec: { selector: { slot: to } } })], kubectlEnv);
    if (r.code !== 0) throw new Error(`${how} switch of ${svc} to ${to} exited ${r.code}: ${r.out.slice(-1500)}`);
    const [tSel, tSettle, tFirst] = await Promise.all([sel, settle, first ?? Promise.resolve(Number.NaN)]);
    if (Number.isNaN(tSel) || Number.isNaN(tSettle)) throw new Error(`${how}: ${svc} did not settle on ${to} within 60 s`);
    return {
      how,
      to,
      cliMs: r.exitAt - t0,
      ...(how === 'plugin' ? { firstWriteMs: tFirst - t0 } : {}),
      selectorMs: tSel - t0,
      propagationMs: tSettle - tSel,
      totalMs: tSettle - t0,
    };
  };

  const results: Measure[] = [];
  const startup: number[] = [];
  try {
    progress('switch: warm-up (one of each, not counted)');
    await measure('plugin');
    await measure('kubectl');
    for (let i = 0; i < cfg.switches; i++) {
      const order: ('plugin' | 'kubectl')[] = i % 2 ? ['kubectl', 'plugin'] : ['plugin', 'kubectl'];
      for (const how of order) {
        const m = await measure(how);
        results.push(m);
      }
      const last = results.slice(-2);
      const a = last.find((m) => m.how === 'plugin');
      const b = last.find((m) => m.how === 'kubectl');
      progress(
        `switch ${i + 1}/${cfg.switches}: bg switch -> ${a!.to}: CLI ${fmt(a!.cliMs, 0)} ms, settled ${fmt(a!.totalMs, 0)} ms; ` +
          `kubectl patch -> ${b!.to}: CLI ${fmt(b!.cliMs, 0)} ms, settled ${fmt(b!.totalMs, 0)} ms`,
      );
    }
    // Node start-up and the plugin's module loading alone (no cluster access).
    for (let i = 0; i < (cfg.quick ? 2 : 5); i++) {
      const t0 = performance.now();
      const r = await run(NODE, [PLUGIN, '--version'], pluginEnv);
      if (r.code === 0) startup.push(r.exitAt - t0);
    }
    await refreshOtherWebhooks(c);
  } finally {
    services.stop();
    slices.stop();
    deployments.stop();
  }

  const of = (how: string) => results.filter((r) => r.how === how);
  const med = (xs: Measure[], f: (m: Measure) => number | undefined) => median(xs.map(f).filter((x): x is number => x !== undefined));
  const p90 = (xs: Measure[], f: (m: Measure) => number) => percentile(xs.map(f), 90);
  const pl = of('plugin');
  const kc = of('kubectl');
  const row = (label: string, xs: Measure[]) => [
    label,
    String(xs.length),
    fmt(med(xs, (m) => m.cliMs), 0),
    xs[0]?.firstWriteMs !== undefined ? fmt(med(xs, (m) => m.firstWriteMs), 0) : '-',
    fmt(med(xs, (m) => m.selectorMs), 0),
    fmt(med(xs, (m) => m.propagationMs), 0),
    fmt(med(xs, (m) => m.totalMs), 0),
    fmt(p90(xs, (m) => m.totalMs), 0),
  ];
  const rr = (f: (m: Measure) => number) => `${fmt(ratio(med(pl, f), med(kc, f)))}x`;
  const text = [
    `${cfg.switches} switches of each, alternating blue/green, interleaved; 2 ready pods per colour (kwok). Times in ms from the process start (medians).`,
    `  bg switch: node_modules/.bin/node plugin/src/main.ts switch ${app} -n NS --kubeconfig .cluster/kubeconfig (enrolled app; the webhook validates the Service patch)`,
    `  baseline:  kubectl patch service ${flip} --type merge -p '{"spec":{"selector":{"slot":"<colour>"}}}' (same pods and Service shape, not enrolled)`,
    '',
    table(
      ['ms (median)', 'n', 'CLI exit', 'first write', 'selector changed', 'selector -> slices', 'start -> slices', 'start -> slices p90'],
      [
        row('kubectl bg switch', pl),
        row('kubectl patch (bare)', kc),
        ['ratio (bg / bare)', '', rr((m) => m.cliMs), '', rr((m) => m.selectorMs), rr((m) => m.propagationMs), rr((m) => m.totalMs), ''],
      ],
    ),
    '',
    `  first write: the plugin's first change (the new colour's ${LIVE_LABEL} label) seen on the watch: Node start-up, kubeconfig, reads and one PATCH.`,
    `  Node start-up and module loading alone (plugin --version, no cluster access): median ${fmt(median(startup), 0)} ms of ${startup.length}.`,
    `  selector -> slices is the same work for both (the EndpointSlice controller); the difference is in what happens before the selector changes.`,
    otherWebhooksNote(c),
  ].join('\n');
  const goalMs = 1000;
  const total = med(pl, (m) => m.totalMs);
  return {
    name: 'switch',
    title: '4. Switch: kubectl bg switch vs a bare selector patch, until the EndpointSlices hold only the new colour',
    text,
    goals: { [`switch visible in the EndpointSlices within about ${goalMs} ms of starting kubectl bg switch (median ${fmt(total, 0)} ms)`]: total <= goalMs },
    data: { namespace: ns, switches: cfg.switches, startupMs: startup, measures: results, events: { services: services.events, slices: slices.events, deployments: deployments.events } },
  };
}
