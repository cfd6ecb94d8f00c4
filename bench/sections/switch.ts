// 4. Switch: from starting `kubectl bg switch` (as a user runs it: a new Node
// process) until the Service's EndpointSlices hold only the new colour's ready
// pods, against a bare `kubectl patch` of a plain Service's selector. Timed
// with watches (Service, EndpointSlices, Deployments), not polling; both
// alternate blue/green and are interleaved.
import { spawn } from 'node:child_process';
import type { Deployment, Service } from '../../src/core/k8s-types.ts';
import { LIVE_LABEL } from '../../src/core/labels.ts';
import { paths } from '../../src/kube/client.ts';
import { type Config, progress, type SectionResult } from '../lib/context.ts';
import { ensureExe, NODE, PLUGIN } from '../lib/exe.ts';
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

type How = 'exe' | 'plugin' | 'kubectl';
interface Measure {
  /** exe: the single executable; plugin: node plugin/src/main.ts; kubectl: the bare patch. */
  how: How;
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
  const exe = ensureExe();
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

  const measure = async (how: How): Promise<Measure> => {
    const bg = how !== 'kubectl';
    const svc = bg ? app : flip;
    const to: Colour = colourNow(svc) === 'blue' ? 'green' : 'blue';
    const want = await readyPods(svc, to);
    if (want.size === 0) throw new Error(`${svc}: no ready ${to} pods to switch to`);
    const sel = services.when(selectorIs(svc, to));
    const settle = slices.when(settled(svc, want));
    const first = bg ? deployments.when((o) => o.get(`${app}-${to}`)?.metadata.labels?.[LIVE_LABEL] === 'true') : undefined;
    const t0 = performance.now();
    const bgArgs = ['switch', app, '-n', ns, '--kubeconfig', c.env.kubeconfig];
    const r =
      how === 'exe'
        ? await run(exe, bgArgs, pluginEnv)
        : how === 'plugin'
          ? await run(NODE, [PLUGIN, ...bgArgs], pluginEnv)
          : await run(
              c.env.kubectl,
              [
                '--kubeconfig',
                c.env.kubeconfig,
                '-n',
                ns,
                'patch',
                'service',
                flip,
                '--type',
                'merge',
                '-p',
                JSON.stringify({ spec: { selector: { slot: to } } }),
              ],
              kubectlEnv,
            );
    if (r.code !== 0) throw new Error(`${how} switch of ${svc} to ${to} exited ${r.code}: ${r.out.slice(-1500)}`);
    const [tSel, tSettle, tFirst] = await Promise.all([sel, settle, first ?? Promise.resolve(Number.NaN)]);
    if (Number.isNaN(tSel) || Number.isNaN(tSettle)) throw new Error(`${how}: ${svc} did not settle on ${to} within 60 s`);
    return {
      how,
      to,
      cliMs: r.exitAt - t0,
      ...(bg ? { firstWriteMs: tFirst - t0 } : {}),
      selectorMs: tSel - t0,
      propagationMs: tSettle - tSel,
      totalMs: tSettle - t0,
    };
  };

  const results: Measure[] = [];
  const startup: number[] = [];
  try {
    progress('switch: warm-up (one of each, not counted)');
    await measure('exe');
    await measure('plugin');
    await measure('kubectl');
    const orders: How[][] = [
      ['exe', 'kubectl', 'plugin'],
      ['kubectl', 'plugin', 'exe'],
      ['plugin', 'exe', 'kubectl'],
    ];
    for (let i = 0; i < cfg.switches; i++) {
      for (const how of orders[i % orders.length]!) results.push(await measure(how));
      const last = results.slice(-3);
      const line = (how: How) => {
        const m = last.find((x) => x.how === how)!;
        return `${how} -> ${m.to}: CLI ${fmt(m.cliMs, 0)} ms, settled ${fmt(m.totalMs, 0)} ms`;
      };
      progress(`switch ${i + 1}/${cfg.switches}: ${line('exe')}; ${line('plugin')}; ${line('kubectl')}`);
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
  const ex = of('exe');
  const pl = of('plugin');
  const kc = of('kubectl');
  const row = (label: string, xs: Measure[]) => [
    label,
    String(xs.length),
    fmt(
      med(xs, (m) => m.cliMs),
      0,
    ),
    xs[0]?.firstWriteMs !== undefined
      ? fmt(
          med(xs, (m) => m.firstWriteMs),
          0,
        )
      : '-',
    fmt(
      med(xs, (m) => m.selectorMs),
      0,
    ),
    fmt(
      med(xs, (m) => m.propagationMs),
      0,
    ),
    fmt(
      med(xs, (m) => m.totalMs),
      0,
    ),
    fmt(
      p90(xs, (m) => m.totalMs),
      0,
    ),
  ];
  const rr = (xs: Measure[], f: (m: Measure) => number) => `${fmt(ratio(med(xs, f), med(kc, f)))}x`;
  const ratioRow = (label: string, xs: Measure[]) => [
    label,
    '',
    rr(xs, (m) => m.cliMs),
    '',
    rr(xs, (m) => m.selectorMs),
    rr(xs, (m) => m.propagationMs),
    rr(xs, (m) => m.totalMs),
    '',
  ];
  const text = [
    `${cfg.switches} switches of each, alternating blue/green, interleaved; 2 ready pods per colour (kwok). Times in ms from the process start (medians).`,
    `  bg switch (exe):  dist/bin/kubectl-bg-${process.platform}-${process.arch} switch ${app} -n NS --kubeconfig .cluster/kubeconfig (the single executable; enrolled app, the webhook validates the Service patch)`,
    `  bg switch (node): node_modules/.bin/node plugin/src/main.ts switch ... (the same on Node, compile cache on)`,
    `  baseline:  kubectl patch service ${flip} --type merge -p '{"spec":{"selector":{"slot":"<colour>"}}}' (same pods and Service shape, not enrolled)`,
    '',
    table(
      ['ms (median)', 'n', 'CLI exit', 'first write', 'selector changed', 'selector -> slices', 'start -> slices', 'start -> slices p90'],
      [
        row('kubectl bg switch (exe)', ex),
        row('kubectl bg switch (node)', pl),
        row('kubectl patch (bare)', kc),
        ratioRow('ratio exe / bare', ex),
        ratioRow('ratio node / bare', pl),
      ],
    ),
    '',
    `  first write: the plugin's first change (the new colour's ${LIVE_LABEL} label) seen on the watch: Node start-up, kubeconfig, reads and one PATCH.`,
    `  Node start-up and module loading alone (node plugin/src/main.ts --version, no cluster access; the status section has the executable's): median ${fmt(median(startup), 0)} ms of ${startup.length}.`,
    `  selector -> slices is the same work for both (the EndpointSlice controller); the difference is in what happens before the selector changes.`,
    otherWebhooksNote(c),
  ].join('\n');
  const goalMs = 1000;
  const total = med(ex, (m) => m.totalMs);
  const goalRatio = ratio(
    total,
    med(kc, (m) => m.totalMs),
  );
  return {
    name: 'switch',
    title: '4. Switch: kubectl bg switch vs a bare selector patch, until the EndpointSlices hold only the new colour',
    text,
    goals: {
      [`switch visible in the EndpointSlices within about ${goalMs} ms of starting kubectl bg switch (exe, median ${fmt(total, 0)} ms)`]: total <= goalMs,
      [`kubectl bg switch (exe) start to slices at most 2x the bare kubectl patch (median ${fmt(goalRatio)}x)`]: goalRatio <= 2,
    },
    data: {
      namespace: ns,
      switches: cfg.switches,
      startupMs: startup,
      measures: results,
      events: { services: services.events, slices: slices.events, deployments: deployments.events },
    },
  };
}
