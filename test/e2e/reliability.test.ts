// Reliability against the real control plane: what happens to enrolled apps when
// the webhook is killed mid-storm, when many clients race a switcher, when the
// webhook is down (failurePolicy and the cluster policy), and when its serving
// certificate rotates under load.
//
// Each part has its own namespace and its own webhook process, scoped to that
// namespace (namespaceSelector on its name) and registered under a name of its
// own, so other e2e files running on the same cluster never see them.
import { randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { resolveApp } from '../../src/core/app.ts';
import { parseHistory } from '../../src/core/history.ts';
import { pendingChanges } from '../../src/core/pending-change.ts';
import { canonicalJson } from '../../src/core/template.ts';
import { sampleApp } from '../fixtures/sample-app.ts';
import {
  apply,
  createNamespace,
  generateCA,
  helm,
  issueCert,
  kubectl,
  kubectlJson,
  kubectlOk,
  type KeyPair,
  type TestNamespace,
  waitFor,
} from './helpers/cluster.ts';
import { waitForNoForeignWebhooks } from './helpers/foreign-webhooks.ts';
import { kubectlBg } from './helpers/plugin-cli.ts';
import { RawApi, type RawResponse } from './helpers/raw-api.ts';
import { replay, Timeline } from './helpers/timeline.ts';
import { type RunningWebhook, startWebhook } from './helpers/webhook.ts';

const RUN = randomBytes(3).toString('hex');
const CHART = resolve(import.meta.dirname, '../../charts/kube-bluegreen');

type Colour = 'blue' | 'green';
interface Dep {
  metadata: { name: string; generation: number; resourceVersion: string; labels?: Record<string, string> };
  spec: { replicas: number; template: { metadata: { labels: Record<string, string> }; spec: { containers: { name: string; image: string }[] } } };
  status?: { replicas?: number; availableReplicas?: number; readyReplicas?: number; updatedReplicas?: number; observedGeneration?: number };
}
interface Svc {
  metadata: { resourceVersion: string; annotations?: Record<string, string> };
  spec: { selector: Record<string, string> };
}

let raw: RawApi;
beforeAll(async () => {
  raw = await RawApi.connect();
});
afterAll(() => raw?.close());

const other = (c: Colour): Colour => (c === 'blue' ? 'green' : 'blue');
const getDep = (ns: string, name: string) => kubectlJson<Dep>(['-n', ns, 'get', 'deployment', name]);
const liveOf = async (ns: string, app: string) => (await kubectlJson<Svc>(['-n', ns, 'get', 'service', app])).spec.selector.slot as Colour;
const imageOf = (d: Dep) => d.spec.template.spec.containers[0]!.image;
const configName = (part: string) => `rel-${part}`;

async function rolledOut(ns: string, names: string[]): Promise<void> {
  await Promise.all(names.map((n) => kubectlOk(['-n', ns, 'rollout', 'status', `deployment/${n}`, '--timeout=90s'], { timeoutMs: 100_000 })));
}

/** Names of the ReplicaSets a Deployment owns. */
async function replicaSetsOf(ns: string, deployment: string): Promise<string[]> {
  const r = await raw.get<{ items: { metadata: { name: string; ownerReferences?: { kind: string; name: string }[] } }[] }>(
    `/apis/apps/v1/namespaces/${ns}/replicasets`,
  );
  if (r.status !== 200) throw new Error(`list replicasets: ${r.status} ${r.text.slice(0, 200)}`);
  return r.body.items
    .filter((x) => x.metadata.ownerReferences?.some((o) => o.kind === 'Deployment' && o.name === deployment))
    .map((x) => x.metadata.name)
    .sort();
}

/**
 * Deployments first, Services once the Deployments are available: a webhook already watching
 * (another file's, or `npm start`'s cluster-wide one) refuses an active Service aimed at a colour
 * that is not available yet.
 */
async function applyApps(ns: string, objs: object[]): Promise<void> {
  const deployments = objs.filter((o) => (o as { kind: string }).kind === 'Deployment') as { metadata: { name: string } }[];
  await apply(deployments);
  await rolledOut(
    ns,
    deployments.map((d) => d.metadata.name),
  );
  await apply(objs.filter((o) => (o as { kind: string }).kind !== 'Deployment'));
}

/** The sample app with `live` as its live colour (Service selector and the bluegreen.io/live labels). */
function appWithLive(namespace: string, app: string, live: Colour): object[] {
  const objs = sampleApp({ namespace, app, image: `registry.example/${app}:v1`, replicas: 2 }) as any[];
  for (const o of objs) {
    if (o.kind === 'Service') o.spec.selector.slot = live;
    else o.metadata.labels['bluegreen.io/live'] = String(o.spec.template.metadata.labels.slot === live);
  }
  return objs;
}

const redirectWarning = (ns: string, app: string, idle: Colour) =>
  `image change redirected to ${app}-${idle} (idle); run 'kubectl bg switch ${app} -n ${ns}' when it is ready`;

/** Runs fn for i = 0..n-1 with at most `concurrency` calls in flight. */
async function pool<T>(n: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

/** The request uid of the change a redirected set-image recorded (the stored live Deployment, as returned). */
function recordedRequest(body: any): string | undefined {
  const v = body?.metadata?.annotations?.['bluegreen.io/pending-change'];
  try {
    return v ? (JSON.parse(v) as { request?: string }).request : undefined;
  } catch {
    return undefined;
  }
}

/** Waits until the reconciler has settled every recorded change of these apps (applied, or not and why). */
async function settled(ns: string, apps: string[], timeoutMs = 30_000): Promise<void> {
  await waitFor(
    async () => {
      for (const app of apps) {
        const q = ['-n', ns, '-l', `bluegreen.io/app=${app}`];
        const d = await kubectlJson<{ items: Dep[] }>(['get', 'deployments', ...q]);
        const sv = await kubectlJson<{ items: Svc[] }>(['get', 'services', ...q]);
        if (pendingChanges(resolveApp({ namespace: ns, app, deployments: d.items as never, services: sv.items as never })).length) return false;
      }
      return true;
    },
    { timeoutMs, intervalMs: 200, message: `every recorded change of ${apps.join(', ')} settled` },
  );
}

/** Requests the reconciler reported as replaced by a newer change before they were applied (Events). */
async function replacedRequests(ns: string): Promise<Set<string>> {
  const ev = await kubectlJson<{ items: { reason: string; message: string }[] }>(['-n', ns, 'get', 'events']);
  return new Set(ev.items.filter((e) => e.reason === 'ChangeReplaced').map((e) => /\(request ([^)]+)\)/.exec(e.message)?.[1] ?? ''));
}

function statusMessage(r: RawResponse): string {
  return typeof r.body?.message === 'string' ? r.body.message : '';
}

// ---------------------------------------------------------------------------

describe('fault: the webhook is SIGKILLed during a storm of set-image calls, then restarted', () => {
  const live: Record<string, Colour> = { alpha: 'blue', beta: 'green', gamma: 'blue' };
  const stormed = ['alpha', 'beta'];
  let ns: TestNamespace;
  let wh: RunningWebhook;
  let timeline: Timeline;
  /** The storm's redirected calls: after the restart, each must have been applied or reported. */
  const accepted: { app: string; image: string; request: string | undefined }[] = [];

  beforeAll(async () => {
    ns = await createNamespace('rel-fault');
    await applyApps(
      ns.name,
      Object.entries(live).flatMap(([app, c]) => appWithLive(ns.name, app, c)),
    );
    wh = await startWebhook({ namespace: ns.name, configName: configName('fault') });
    timeline = await Timeline.start(ns.name);
  });

  afterAll(async () => {
    await timeline?.stop();
    await wh?.stop();
    await ns?.cleanup();
  });

  it('60 PATCHes, 6 in flight, on the live colours of two apps: each one redirected or failed; no live template changed', async () => {
    const before = new Map<string, { template: unknown; generation: number; rs: string[] }>();
    for (const app of stormed) {
      const d = await getDep(ns.name, `${app}-${live[app]}`);
      before.set(app, { template: d.spec.template, generation: d.metadata.generation, rs: await replicaSetsOf(ns.name, d.metadata.name) });
    }

    let completed = 0;
    let killStarted = Infinity;
    let killedAt = Infinity;
    let kill: Promise<void> | undefined;
    const results = await pool(60, 6, async (i) => {
      const app = stormed[i % stormed.length]!;
      const image = `registry.example/${app}:storm-${i}`;
      const startedAt = performance.now();
      const r = await raw.setImage(ns.name, `${app}-${live[app]}`, 'app', image);
      if (++completed === 20) {
        killStarted = performance.now();
        kill = wh.kill().then(() => {
          killedAt = performance.now();
        });
      }
      return { i, app, image, r, startedAt, finishedAt: performance.now() };
    });
    await kill;
    expect(killedAt).toBeLessThan(Infinity);

    const problems: string[] = [];
    for (const x of results) {
      const idle = other(live[x.app]!);
      const what = `#${x.i} ${x.app} ${x.image}: HTTP ${x.r.status}`;
      if (x.r.status === 200) {
        if (!x.r.warnings.includes(redirectWarning(ns.name, x.app, idle)))
          problems.push(`${what} succeeded without the redirect warning (${JSON.stringify(x.r.warnings)})`);
        if (imageOf(x.r.body) !== `registry.example/${x.app}:v1`) problems.push(`${what} returned the live Deployment with image ${imageOf(x.r.body)}`);
      } else if (x.r.status < 400 || x.r.body?.kind !== 'Status' || !statusMessage(x.r)) {
        problems.push(`${what} is neither a success nor an error Status: ${x.r.text.slice(0, 300)}`);
      }
      // Started once the process was dead: the API server cannot reach it, and failurePolicy is Fail.
      if (x.startedAt > killedAt && !(x.r.status >= 400 && statusMessage(x.r).includes('failed calling webhook "deployments.mutate.bluegreen.io"')))
        problems.push(`${what} was sent after the kill but was not refused for the webhook being unreachable: ${statusMessage(x.r) || x.r.text.slice(0, 200)}`);
    }
    expect(problems).toEqual([]);
    const beforeKill = results.filter((x) => x.finishedAt < killStarted);
    const afterKill = results.filter((x) => x.startedAt > killedAt);
    const ok = results.filter((x) => x.r.status === 200).length;
    console.log(
      `fault: ${ok} redirected, ${results.length - ok} failed; before the kill ${beforeKill.filter((x) => x.r.status === 200).length}/${beforeKill.length} redirected; ` +
        `${afterKill.length} sent after it, all refused`,
    );
    // The webhook worked before the kill, and the storm went on long after it.
    expect(beforeKill.filter((x) => x.r.status === 200).length).toBeGreaterThanOrEqual(5);
    expect(afterKill.length).toBeGreaterThanOrEqual(10);

    // The live colours, compared whole: template and ReplicaSets. (Its generation moves: the
    // Deployment strategy counts annotation changes, and each redirect stores a record there.)
    for (const app of stormed) {
      const d = await getDep(ns.name, `${app}-${live[app]}`);
      const b = before.get(app)!;
      expect(d.spec.template).toEqual(b.template);
      expect(await replicaSetsOf(ns.name, d.metadata.name)).toEqual(b.rs);
    }

    // Every commit in between: no live template change. Whether each redirected change reached
    // the idle colour is checked after the restart: some were still pending at the kill.
    await timeline.caughtUp();
    expect(timeline.errors).toEqual([]);
    const rp = replay(timeline.events());
    expect(rp.violations).toEqual([]);
    expect(rp.switches).toEqual([]);
    for (const x of results.filter((r) => r.r.status === 200)) accepted.push({ app: x.app, image: x.image, request: recordedRequest(x.r.body) });
    expect(accepted.every((a) => a.request)).toBe(true);
  });

  it('after a restart the webhook redirects again, from the cluster alone: it knows of a switch made while it was down', async () => {
    // SIGKILL, like a crash: the configurations are still registered.
    expect((await kubectl(['get', 'mutatingwebhookconfiguration,validatingwebhookconfiguration', wh.configName])).code).toBe(0);
    const oldPid = wh.pid();
    // While it is down, app gamma switches to green. The configurations are removed for this (with
    // them and no process, the enrolled writes of a switch are refused), so the process never sees it.
    await kubectlOk(['delete', 'mutatingwebhookconfiguration,validatingwebhookconfiguration', wh.configName]);
    const switched = await waitFor(
      async () => {
        const r = await kubectlBg(ns.name, ['switch', 'gamma']);
        return r.code === 0 ? r : undefined; // until the API server has dropped the configurations
      },
      { timeoutMs: 20_000, intervalMs: 300, message: 'kubectl bg switch gamma with no webhook' },
    );
    expect(switched.stdout).toContain('switched gamma to green');
    expect(await liveOf(ns.name, 'gamma')).toBe('green');
    live.gamma = 'green';

    await wh.restart();
    expect(wh.pid()).not.toBe(oldPid);
    for (const app of Object.keys(live)) {
      const liveName = `${app}-${live[app]}`;
      const idle = other(live[app]!);
      const liveBefore = await getDep(ns.name, liveName);
      const r = await kubectl(['-n', ns.name, 'set', 'image', `deployment/${liveName}`, `app=registry.example/${app}:after-restart`]);
      expect({ app, code: r.code }).toEqual({ app, code: 0 });
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines[0]).toBe(`Warning: ${redirectWarning(ns.name, app, idle)}`);
      for (const l of lines) expect(l).toMatch(/^Warning: /);
      await waitFor(async () => imageOf(await getDep(ns.name, `${app}-${idle}`)) === `registry.example/${app}:after-restart`, {
        timeoutMs: 15_000,
        message: `the change to reach ${app}-${idle}`,
      });
      const liveAfter = await getDep(ns.name, liveName);
      expect(liveAfter.spec.template).toEqual(liveBefore.spec.template);
    }
    // Nothing lost across the kill: every change the storm got "redirected" for reached the
    // colour that was idle, or is reported (replaced by a newer one before it was applied).
    await settled(ns.name, Object.keys(live));
    await timeline.caughtUp();
    const rp = replay(timeline.events());
    expect(rp.violations).toEqual([]);
    expect(rp.switches.map((s) => `${s.app}:${s.from}->${s.to}`)).toEqual(['gamma:blue->green']);
    const replaced = await replacedRequests(ns.name);
    const lost: string[] = [];
    let applied = 0;
    for (const a of accepted) {
      const o = rp.outcomes.get(a.request!);
      const reached = rp.templates.some((t) => !t.live && t.deployment.startsWith(`${a.app}-`) && t.images[0] === a.image);
      if (o?.applied && reached) applied++;
      else if (!replaced.has(a.request!) && !rp.replaced.has(a.request!) && !(o && !o.applied && o.reason))
        lost.push(`${a.image} (${a.request}): outcome ${JSON.stringify(o)}`);
    }
    console.log(
      `fault: of ${accepted.length} redirected during the storm, ${applied} applied, ${accepted.length - applied - lost.length} reported replaced or not applied, ${lost.length} lost`,
    );
    expect(lost).toEqual([]);
  });
});

// ---------------------------------------------------------------------------

describe('concurrency: 10 clients change images while kubectl bg switches and rolls back', () => {
  let ns: TestNamespace;
  let wh: RunningWebhook;
  let timeline: Timeline;

  beforeAll(async () => {
    ns = await createNamespace('rel-race');
    await applyApps(ns.name, sampleApp({ namespace: ns.name, replicas: 2 }));
    wh = await startWebhook({ namespace: ns.name, configName: configName('race') });
    timeline = await Timeline.start(ns.name);
  });

  afterAll(async () => {
    await timeline?.stop();
    await wh?.stop();
    await ns?.cleanup();
  });

  it('ends on a fully available colour, with a consistent history, nothing applied to the live colour and nothing lost', { timeout: 180_000 }, async () => {
    interface Call {
      client: number;
      target: Colour;
      image: string;
      r: RawResponse;
    }
    interface Attempt {
      kind: 'switch' | 'rollback';
      code: number;
      output: string;
      liveBefore: Colour;
      rsBefore: string[];
      liveAfter?: Colour;
      rsAfter?: string[];
    }
    const calls: Call[] = [];
    const attempts: Attempt[] = [];
    // Clients work in bursts (ACTIVE ms of every CYCLE), so that the idle colour is sometimes done
    // rolling out and a switch can pass; the switcher tries all the time, during bursts too.
    const ACTIVE = 1_500;
    const CYCLE = 4_000;
    const t0 = performance.now();
    const MIN_MS = 30_000; // the clients go on at least this long, however fast the switcher is
    let stop = false;

    const client = async (c: number) => {
      for (let n = 0; !stop; n++) {
        const phase = (performance.now() - t0) % CYCLE;
        if (phase >= ACTIVE) {
          await sleep(CYCLE - phase);
          continue;
        }
        const svc = await raw.get<Svc>(`/api/v1/namespaces/${ns.name}/services/shop`);
        const target = svc.body.spec.selector.slot as Colour;
        const image = `registry.example/shop:c${c}-${n}`;
        calls.push({ client: c, target, image, r: await raw.setImage(ns.name, `shop-${target}`, 'app', image) });
        await sleep(Math.random() * 150);
      }
    };
    const switcher = async () => {
      const deadline = performance.now() + 75_000;
      try {
        for (const kind of ['switch', 'rollback', 'switch', 'rollback', 'switch', 'rollback'] as const) {
          while (performance.now() < deadline) {
            const liveBefore = await liveOf(ns.name, 'shop');
            const a: Attempt = { kind, code: -1, output: '', liveBefore, rsBefore: await replicaSetsOf(ns.name, `shop-${liveBefore}`) };
            const r = await kubectlBg(ns.name, [kind, 'shop']);
            Object.assign(a, { code: r.code, output: r.stdout + r.stderr });
            attempts.push(a);
            if (r.code === 0) {
              a.liveAfter = await liveOf(ns.name, 'shop');
              a.rsAfter = await replicaSetsOf(ns.name, `shop-${a.liveAfter}`);
              break;
            }
            await sleep(100);
          }
        }
      } finally {
        await sleep(Math.max(0, t0 + MIN_MS - performance.now()));
        stop = true;
      }
    };
    await Promise.all([switcher(), ...Array.from({ length: 10 }, (_, c) => client(c))]);

    const ok = attempts.filter((a) => a.code === 0);
    const count = (f: (c: Call) => boolean) => calls.filter(f).length;
    console.log(
      `concurrency: ${calls.length} set-image calls (${count((c) => c.r.status === 200 && c.r.warnings.length > 0)} redirected, ` +
        `${count((c) => c.r.status === 200 && c.r.warnings.length === 0)} direct to the idle colour, ${count((c) => c.r.status !== 200)} failed); ` +
        `${attempts.length} switch/rollback attempts: ${ok.length} done, ${attempts.filter((a) => a.code === 2).length} refused, ` +
        `${attempts.filter((a) => a.code !== 0 && a.code !== 2).length} errors`,
    );
    const failures = new Map<string, number>();
    for (const c of calls.filter((x) => x.r.status !== 200)) {
      const k = `${c.r.status} ${statusMessage(c.r)
        .replace(/shop:c\d+-\d+/g, 'shop:…')
        .replace(/\d+s ago/g, 'Ns ago')
        .slice(0, 160)}`;
      failures.set(k, (failures.get(k) ?? 0) + 1);
    }
    if (failures.size) console.log('set-image failures:', Object.fromEntries(failures));
    // The API server may call a mutating webhook more than once for one request (it re-runs
    // admission when its storage update must be retried): count the webhook's template decisions.
    const decisions = wh
      .logs()
      .split('\n')
      .filter((l) => l.includes('"endpoint":"mutate"') && /"outcome":"(redirected|denied)"/.test(l) && l.includes('"kind":"Deployment"'));
    console.log(`the webhook answered ${decisions.length} mutate calls with a redirect or a denial for ${calls.length} set-image requests`);
    const refusals = new Map<string, number>();
    for (const a of attempts.filter((x) => x.code === 2)) {
      const k = (/error: (.*)/.exec(a.output)?.[1] ?? a.output)
        .replace(/\d+s ago/g, 'Ns ago')
        .replace(/\d+ of \d+ pods updated, \d+ running/g, 'N of N pods updated')
        .slice(0, 200);
      refusals.set(k, (refusals.get(k) ?? 0) + 1);
    }
    if (refusals.size) console.log('switch/rollback refusals:', Object.fromEntries(refusals));
    for (const a of attempts.filter((x) => x.code !== 0 && x.code !== 2))
      console.log(`kubectl bg ${a.kind} exited ${a.code}: ${a.output.trim().slice(0, 400)}`);

    if (process.env.KBG_DEBUG_DIR) writeFileSync(join(process.env.KBG_DEBUG_DIR, 'race-webhook.log'), wh.logs());
    // Enough happened for the checks below to mean something.
    expect(calls.length).toBeGreaterThanOrEqual(80);
    expect(ok.filter((a) => a.kind === 'switch').length).toBeGreaterThanOrEqual(2);
    expect(ok.filter((a) => a.kind === 'rollback').length).toBeGreaterThanOrEqual(2);
    // The switcher only ever gets done (0) or refused (2: idle colour not ready, a change pending).
    expect(attempts.filter((a) => a.code !== 0 && a.code !== 2).map((a) => `${a.kind} ${a.code}: ${a.output.slice(0, 300)}`)).toEqual([]);

    // 1. The reconciler settles every recorded change; then the active Service points at a colour
    // whose Deployment is fully available.
    await settled(ns.name, ['shop']);
    const finalSvc = await kubectlJson<Svc>(['-n', ns.name, 'get', 'service', 'shop']);
    const liveNow = finalSvc.spec.selector.slot as Colour;
    expect(liveNow).toBe(ok[ok.length - 1]!.liveAfter);
    const d = await getDep(ns.name, `shop-${liveNow}`);
    expect(d.status?.observedGeneration).toBe(d.metadata.generation);
    for (const f of ['replicas', 'updatedReplicas', 'readyReplicas', 'availableReplicas'] as const)
      expect({ f, v: d.status?.[f] }).toEqual({ f, v: d.spec.replicas });

    // 2. The history: one record per switch or rollback that succeeded, chained.
    const history = parseHistory(finalSvc.metadata.annotations?.['bluegreen.io/history']);
    expect(history.error).toBeUndefined();
    expect(JSON.parse(finalSvc.metadata.annotations!['bluegreen.io/history']!)).toHaveLength(ok.length);
    expect(history.records.map((r) => `${r.kind}:${r.from}->${r.to}`)).toEqual(ok.map((a) => `${a.kind}:${a.liveBefore}->${a.liveAfter}`));
    expect(history.records[0]!.from).toBe('blue');
    for (let i = 1; i < history.records.length; i++) expect({ i, from: history.records[i]!.from }).toEqual({ i, from: history.records[i - 1]!.to });
    expect(history.records[history.records.length - 1]!.to).toBe(liveNow);

    // 3. No commit ever changed the template of the colour that was live at that moment, or gave it a ReplicaSet.
    await timeline.caughtUp();
    expect(timeline.errors).toEqual([]);
    const rp = replay(timeline.events());
    expect(rp.violations).toEqual([]);
    expect(rp.switches.map((s) => `${s.from}->${s.to}`)).toEqual(ok.map((a) => `${a.liveBefore}->${a.liveAfter}`));
    // Each record names the images the new colour ran when the Service flipped; the live
    // template now is the one the idle colour had at the last switch.
    const templateAt = (deployment: string, rv: number) => rp.templates.filter((t) => t.deployment === deployment && t.rv <= rv).pop();
    rp.switches.forEach((s, i) => {
      const t = templateAt(`shop-${s.to}`, s.rv)!;
      expect({ i, images: history.records[i]!.images }).toEqual({ i, images: t.images.map((im) => `app=${im}`) });
    });
    const last = rp.switches[rp.switches.length - 1]!;
    expect(canonicalJson(d.spec.template)).toBe(templateAt(`shop-${liveNow}`, last.rv)!.template);

    // 4. The live colour's ReplicaSets, listed after each switch, were the same just before the next one.
    let current: { live: Colour; rs: string[] } | undefined;
    for (const a of attempts) {
      if (current) expect({ live: a.liveBefore, rs: a.rsBefore }).toEqual({ live: current.live, rs: current.rs });
      if (a.code === 0) current = { live: a.liveAfter!, rs: a.rsAfter! };
    }

    // 5. Every set-image: redirected with the warning, or made on a colour that was idle when it
    // was committed, or failed with a message. Nothing answered "redirected" is lost: it reached
    // the colour that was idle, or is reported (replaced by a newer change before it was
    // applied, or not applied and why). Nothing that failed was applied.
    const replaced = await replacedRequests(ns.name);
    let reachedCount = 0;
    let reportedCount = 0;
    const problems: string[] = [];
    for (const c of calls) {
      const what = `${c.image} on shop-${c.target}: HTTP ${c.r.status}`;
      if (c.r.status !== 200) {
        if (c.r.status < 400 || !statusMessage(c.r)) problems.push(`${what}: neither a success nor an error Status`);
        const reached = rp.templates.find((t) => t.images.includes(c.image));
        if (reached) {
          // Which recorded change put it there.
          const uid = (JSON.parse(reached.lastChange ?? '{}') as { request?: string }).request ?? '';
          problems.push(`${what} failed ("${statusMessage(c.r)}") yet reached ${reached.deployment} at rv ${reached.rv}, settled as request ${uid}`);
        }
        continue;
      }
      const redirect = c.r.warnings.find((w) => w.startsWith('image change redirected to'));
      if (redirect) {
        const m = /^image change redirected to shop-(blue|green) \(idle\)/.exec(redirect);
        const idle = m?.[1] as Colour | undefined;
        if (idle !== other(c.target)) problems.push(`${what}: warning names the wrong colour: ${redirect}`);
        if (imageOf(c.r.body) === c.image) {
          // The API server retried its update (a conflict) after a switch made the target idle: the
          // retry stored the change on the colour that was idle by then, and the first attempt's
          // warning stays in the answer. Right only if the target was idle at that commit.
          const rv = Number(c.r.body.metadata.resourceVersion);
          if (rp.liveAt(rv, 'shop') === c.target) problems.push(`${what}: redirected, yet the live Deployment carries the image at rv ${rv}`);
          continue;
        }
        const request = recordedRequest(c.r.body);
        const outcome = request ? rp.outcomes.get(request) : undefined;
        if (rp.templates.some((t) => t.deployment.startsWith('shop-') && !t.live && t.images[0] === c.image) && outcome?.applied) reachedCount++;
        else if ((request && (replaced.has(request) || rp.replaced.has(request))) || (outcome && !outcome.applied && outcome.reason)) reportedCount++;
        else problems.push(`${what}: redirected (request ${request}) but neither reached the idle colour nor was reported: outcome ${JSON.stringify(outcome)}`);
      } else {
        // No warning: only right if the target was idle when the change was committed.
        const rv = Number(c.r.body.metadata.resourceVersion);
        if (rp.liveAt(rv, 'shop') === c.target) problems.push(`${what}: changed the live colour at rv ${rv} without a redirect warning`);
        if (imageOf(c.r.body) !== c.image) problems.push(`${what}: allowed as is, but the Deployment does not carry the image`);
      }
    }
    // The newest accepted change is the one the idle colour ends with: nothing replaced it.
    const lastRedirected = [...calls].reverse().find((c) => c.r.status === 200 && c.r.warnings.some((w) => w.startsWith('image change redirected')));
    const lastOutcome = lastRedirected && rp.outcomes.get(recordedRequest(lastRedirected.r.body) ?? '');
    expect({ image: lastRedirected?.image, applied: lastOutcome?.applied }).toEqual({ image: lastRedirected?.image, applied: true });
    console.log(
      `concurrency: of the redirected calls, ${reachedCount} reached the idle colour and ${reportedCount} were reported (replaced before they were applied, or not applied with why); ` +
        `before admission stopped writing (2026-11-23): 249 calls, 178 redirected, 71 refused with 409`,
    );
    expect(problems).toEqual([]);
  });
});

// ---------------------------------------------------------------------------

describe('down: the webhook process is gone', () => {
  const SCOPE = 'kube-bluegreen.test/reliability-policy';
  let ns: TestNamespace;
  let wh: RunningWebhook;
  let policyObjects: { kind: string; name: string }[] = [];
  let policyName = '';
  const k = (...args: string[]) => kubectl(['-n', ns.name, ...args]);

  beforeAll(async () => {
    ns = await createNamespace('rel-down', { labels: { [SCOPE]: RUN } });
    await applyApps(ns.name, sampleApp({ namespace: ns.name, replicas: 1 }));
    wh = await startWebhook({ namespace: ns.name, configName: configName('down') });
    // The chart's policy, bound to this namespace only.
    const r = await helm([
      'template',
      `rel-${RUN}`,
      CHART,
      '--namespace',
      ns.name,
      '--show-only',
      'templates/policy.yaml',
      '--set-json',
      `policy.namespaceMatchLabels=${JSON.stringify({ [SCOPE]: RUN })}`,
    ]);
    if (r.code !== 0) throw new Error(`helm template: ${r.stderr}`);
    const docs = parseAllDocuments(r.stdout)
      .map((d) => d.toJS() as { kind: string; metadata: { name: string }; spec: any } | null)
      .filter((d) => !!d);
    policyObjects = docs.map((d) => ({ kind: d.kind, name: d.metadata.name }));
    policyName = docs.find((d) => d.kind === 'ValidatingAdmissionPolicy')!.metadata.name;
    expect(docs.find((d) => d.kind === 'ValidatingAdmissionPolicyBinding')!.spec.matchResources.namespaceSelector.matchLabels).toEqual({ [SCOPE]: RUN });
    await kubectlOk(['apply', '-f', '-'], { input: r.stdout });
    await waitFor(async () => {
      const p = await kubectlJson(['get', 'validatingadmissionpolicy', policyName]);
      return p.status?.observedGeneration === p.metadata.generation;
    });
    // In force: an enrolled Deployment without a slot label is refused (a CREATE: no mutating
    // webhook sees it, and the policy runs before the validating webhooks).
    const bad = JSON.stringify({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'no-slot', labels: { 'bluegreen.io/app': 'shop' } },
      spec: { selector: { matchLabels: { app: 'x' } }, template: { metadata: { labels: { app: 'x' } }, spec: { containers: [{ name: 'app', image: 'x' }] } } },
    });
    await waitFor(
      async () =>
        (await kubectl(['-n', ns.name, 'create', '--dry-run=server', '-f', '-'], { input: bad })).stderr.includes(`ValidatingAdmissionPolicy '${policyName}'`),
      {
        timeoutMs: 30_000,
        message: 'the policy to be in force',
      },
    );
  });

  afterAll(async () => {
    for (const o of policyObjects) await kubectl(['delete', o.kind.toLowerCase(), o.name, '--ignore-not-found']);
    await wh?.stop();
    await ns?.cleanup();
  });

  it('killed (configurations left in place): what is not enrolled is admitted as usual; enrolled objects follow the documented failurePolicy', async () => {
    const blueBefore = await getDep(ns.name, 'shop-blue');
    const greenBefore = await getDep(ns.name, 'shop-green');
    await wh.kill();
    expect((await kubectl(['get', 'mutatingwebhookconfiguration', wh.configName])).code).toBe(0);

    // Not enrolled: Deployment, Service, ConfigMap: CREATE, UPDATE, scale; each promptly.
    const timed = async (args: string[], input?: string) => {
      const t = performance.now();
      const r = await kubectl(['-n', ns.name, ...args], input ? { input } : {});
      return { ...r, ms: performance.now() - t };
    };
    const plain = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'plain', labels: { app: 'plain' } },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'plain' } },
        template: { metadata: { labels: { app: 'plain' } }, spec: { containers: [{ name: 'app', image: 'registry.example/plain:v1' }] } },
      },
    };
    const steps: [string, string[], string?][] = [
      ['create deployment', ['apply', '-f', '-'], JSON.stringify(plain)],
      ['update deployment', ['set', 'image', 'deployment/plain', 'app=registry.example/plain:v2']],
      ['scale deployment', ['scale', 'deployment/plain', '--replicas=3']],
      ['create service', ['create', 'service', 'clusterip', 'plain', '--tcp=80:8080']],
      ['update service', ['patch', 'service', 'plain', '-p', '{"spec":{"selector":{"app":"plain"}}}']],
      ['create configmap', ['create', 'configmap', 'settings', '--from-literal=mode=a']],
      ['update configmap', ['patch', 'configmap', 'settings', '-p', '{"data":{"mode":"b"}}']],
    ];
    for (const [name, args, input] of steps) {
      const r = await timed(args, input);
      expect({ name, code: r.code, stderr: r.stderr }).toEqual({ name, code: 0, stderr: '' });
      // Never sent to the dead webhook (or, for scale, failed over at once: connection refused).
      expect(r.ms, name).toBeLessThan(5_000);
    }
    const p = await getDep(ns.name, 'plain');
    expect([imageOf(p), p.spec.replicas]).toEqual(['registry.example/plain:v2', 3]);
    expect((await kubectlJson(['-n', ns.name, 'get', 'configmap', 'settings'])).data).toEqual({ mode: 'b' });
    expect((await kubectlJson(['-n', ns.name, 'get', 'service', 'plain'])).spec.selector).toEqual({ app: 'plain' });

    // Enrolled: as charts/kube-bluegreen/README.md documents ("Why failurePolicy: Fail").
    const refusedBy = async (hook: string, ...args: string[]) => {
      const r = await k(...args);
      expect({ args, code: r.code }).toEqual({ args, code: 1 });
      expect(r.stderr).toContain(`failed calling webhook "${hook}"`);
    };
    await refusedBy('deployments.mutate.bluegreen.io', 'set', 'image', 'deployment/shop-blue', 'app=registry.example/shop:while-down');
    await refusedBy('deployments.mutate.bluegreen.io', 'set', 'image', 'deployment/shop-green', 'app=registry.example/shop:while-down');
    await refusedBy('deployments.validate.bluegreen.io', 'delete', 'deployment', 'shop-green', '--wait=false');
    await refusedBy('services.validate.bluegreen.io', 'patch', 'service', 'shop', '-p', '{"spec":{"selector":{"slot":"green"}}}');
    // ...and scaling is never blocked (scale.validate is Ignore).
    const scaled = await k('scale', 'deployment/shop-blue', '--replicas=2');
    expect(scaled.code).toBe(0);
    const blue = await getDep(ns.name, 'shop-blue');
    expect(blue.spec.replicas).toBe(2);
    expect(blue.spec.template).toEqual(blueBefore.spec.template);
    expect((await getDep(ns.name, 'shop-green')).spec.template).toEqual(greenBefore.spec.template);
    expect(await liveOf(ns.name, 'shop')).toBe('blue');
  });

  it(
    'with the configurations removed too, the cluster policy alone refuses a pod-template change to the live colour, and lets the idle one change',
    { timeout: 90_000 },
    async () => {
      const blueBefore = await getDep(ns.name, 'shop-blue');
      expect(blueBefore.metadata.labels?.['bluegreen.io/live']).toBe('true');
      // "The policy alone" only means something if no other webhook (e.g. `npm start`'s) is there either.
      await waitForNoForeignWebhooks(ns.name, [wh.configName], 45_000);
      await kubectlOk(['delete', 'mutatingwebhookconfiguration,validatingwebhookconfiguration', wh.configName]);
      const policyRefusal = (name: string) =>
        `ValidatingAdmissionPolicy '${policyName}' with binding '${policyName}' denied request: Deployment ${name} is the live colour of blue-green app shop (label bluegreen.io/live=true): its pod template cannot change in place`;
      // Until the API server drops the configurations it still fails calling the webhook.
      const r = await waitFor(
        async () => {
          const x = await k('set', 'image', 'deployment/shop-blue', 'app=registry.example/shop:v2');
          return x.stderr.includes('failed calling webhook') ? undefined : x;
        },
        { timeoutMs: 20_000, intervalMs: 250, message: 'the API server to drop the webhook configurations' },
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(policyRefusal('shop-blue'));
      const env = await k('set', 'env', 'deployment/shop-blue', 'MODE=new');
      expect(env.code).toBe(1);
      expect(env.stderr).toContain(policyRefusal('shop-blue'));
      expect((await getDep(ns.name, 'shop-blue')).spec.template).toEqual(blueBefore.spec.template);

      // The idle colour takes the change (and the live replica count, scaled to 2 above), and
      // kubectl bg switch (no webhook) moves the live label...
      const idle = await k('set', 'image', 'deployment/shop-green', 'app=registry.example/shop:v2');
      expect({ code: idle.code, stderr: idle.stderr }).toEqual({ code: 0, stderr: '' });
      expect(imageOf(await getDep(ns.name, 'shop-green'))).toBe('registry.example/shop:v2');
      await kubectlOk(['-n', ns.name, 'scale', 'deployment/shop-green', '--replicas=2']);
      await rolledOut(ns.name, ['shop-green']);
      const sw = await kubectlBg(ns.name, ['switch', 'shop']);
      expect(sw.code, sw.stderr).toBe(0);
      expect((await getDep(ns.name, 'shop-green')).metadata.labels?.['bluegreen.io/live']).toBe('true');
      expect((await getDep(ns.name, 'shop-blue')).metadata.labels?.['bluegreen.io/live']).toBe('false');
      // ...so the policy now guards green, and blue is free.
      const green = await k('set', 'image', 'deployment/shop-green', 'app=registry.example/shop:v3');
      expect(green.code).toBe(1);
      expect(green.stderr).toContain(policyRefusal('shop-green'));
      expect(imageOf(await getDep(ns.name, 'shop-green'))).toBe('registry.example/shop:v2');
      const blue = await k('set', 'image', 'deployment/shop-blue', 'app=registry.example/shop:v3');
      expect({ code: blue.code, stderr: blue.stderr }).toEqual({ code: 0, stderr: '' });
    },
  );
});

// ---------------------------------------------------------------------------

/** A directory the way the kubelet mounts a Secret: files are symlinks into ..data, which is swapped atomically. */
class MountedSecret {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }
  path(name: string) {
    return join(this.dir, name);
  }
  /** The kubelet's AtomicWriter: a new timestamped directory, a ..data_tmp symlink to it, renamed over ..data. */
  writeAtomically(files: Record<string, string>): void {
    const stamp = `..${new Date().toISOString().replace(/[:.]/g, '_')}.${randomBytes(4).toString('hex')}`;
    mkdirSync(join(this.dir, stamp));
    for (const [n, v] of Object.entries(files)) writeFileSync(join(this.dir, stamp, n), v, { mode: 0o600 });
    const old = existsSync(join(this.dir, '..data')) ? basename(readlinkSync(join(this.dir, '..data'))) : undefined;
    symlinkSync(stamp, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    for (const n of Object.keys(files)) if (!existsSync(this.path(n))) symlinkSync(join('..data', n), this.path(n));
    if (old) rmSync(join(this.dir, old), { recursive: true, force: true });
  }
  /** The other common way: each file written to a temporary name and renamed over the old one. */
  renameInPlace(files: Record<string, string>): void {
    for (const [n, v] of Object.entries(files)) {
      writeFileSync(join(this.dir, `.${n}.tmp`), v, { mode: 0o600 });
      renameSync(join(this.dir, `.${n}.tmp`), this.path(n));
    }
  }
}

function servedCertificate(port: number, ca: string): Promise<{ fingerprint256: string; protocol: string | null }> {
  return new Promise((res, rej) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca }, () => {
      const out = { fingerprint256: s.getPeerCertificate().fingerprint256, protocol: s.getProtocol() };
      s.end();
      res(out);
    });
    s.setTimeout(5_000, () => s.destroy(new Error('TLS handshake timed out')));
    s.on('error', rej);
  });
}

describe('certificates: a mounted serving certificate rotates under load', () => {
  let ns: TestNamespace;
  let wh: RunningWebhook;
  let ca: KeyPair;
  let certs: KeyPair[];
  let mount: MountedSecret;

  beforeAll(async () => {
    ns = await createNamespace('rel-certs');
    await applyApps(ns.name, sampleApp({ namespace: ns.name, replicas: 1 }));
    ca = await generateCA(`kube-bluegreen-test-ca-${RUN}`);
    const req = { commonName: 'kube-bluegreen-webhook', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], usage: 'server' as const };
    certs = await Promise.all([issueCert(ca, req), issueCert(ca, req), issueCert(ca, req)]);
    mount = new MountedSecret(mkdtempSync(join(tmpdir(), 'kbg-rel-tls-')));
    mount.writeAtomically({ 'tls.crt': certs[0]!.certPem, 'tls.key': certs[0]!.keyPem, 'ca.crt': ca.certPem });
    wh = await startWebhook({
      namespace: ns.name,
      configName: configName('certs'),
      extraArgs: ['--tls-cert-file', mount.path('tls.crt'), '--tls-key-file', mount.path('tls.key'), '--tls-ca-file', mount.path('ca.crt')],
    });
  });

  afterAll(async () => {
    await wh?.stop();
    await ns?.cleanup();
    if (mount) rmSync(mount.dir, { recursive: true, force: true });
  });

  const fingerprint = (p: KeyPair) => new X509Certificate(p.certPem).fingerprint256;

  it('serves the mounted certificate and registers the mounted CA as caBundle', async () => {
    expect((await servedCertificate(wh.port, ca.certPem)).fingerprint256).toBe(fingerprint(certs[0]!));
    expect(wh.ca).toBe(ca.certPem);
    const bundle = Buffer.from(ca.certPem).toString('base64');
    for (const kind of ['mutatingwebhookconfiguration', 'validatingwebhookconfiguration']) {
      const c = await kubectlJson<{ webhooks: { name: string; clientConfig: { caBundle: string } }[] }>(['get', kind, wh.configName]);
      for (const w of c.webhooks) expect({ w: w.name, caBundle: w.clientConfig.caBundle }).toEqual({ w: w.name, caBundle: bundle });
    }
  });

  it(
    '20 server-side dry-run redirects a second for 15 s, through two rotations: zero failed admissions; new connections get the new certificate',
    { timeout: 60_000 },
    async () => {
      const greenBefore = await getDep(ns.name, 'shop-green');
      const warning = redirectWarning(ns.name, 'shop', 'green');
      const rotations: { cert: number; method: string; seenAfterMs: number }[] = [];
      const rotate = async (atMs: number, cert: number, method: 'symlink' | 'rename', t0: number) => {
        await sleep(Math.max(0, t0 + atMs - performance.now()));
        const files = { 'tls.crt': certs[cert]!.certPem, 'tls.key': certs[cert]!.keyPem };
        const t = performance.now();
        if (method === 'symlink') mount.writeAtomically({ ...files, 'ca.crt': ca.certPem });
        else mount.renameInPlace({ 'tls.key': files['tls.key'], 'tls.crt': files['tls.crt'] });
        await waitFor(async () => (await servedCertificate(wh.port, ca.certPem)).fingerprint256 === fingerprint(certs[cert]!), {
          timeoutMs: 5_000,
          intervalMs: 50,
          message: `the webhook to serve certificate #${cert}`,
        });
        rotations.push({ cert, method, seenAfterMs: Math.round(performance.now() - t) });
      };

      const t0 = performance.now();
      const rotating = (async () => {
        await rotate(4_000, 1, 'symlink', t0);
        await rotate(9_500, 2, 'rename', t0);
      })();
      const sent: Promise<{ i: number; r?: RawResponse; error?: string }>[] = [];
      for (let i = 0; performance.now() - t0 < 15_000; i++) {
        sent.push(
          raw.setImage(ns.name, 'shop-blue', 'app', `registry.example/shop:load-${i}`, { dryRun: true }).then(
            (r) => ({ i, r }),
            (e: Error) => ({ i, error: e.message }),
          ),
        );
        await sleep(Math.max(0, t0 + (i + 1) * 50 - performance.now()));
      }
      const results = await Promise.all(sent);
      await rotating;
      console.log(`certificates: ${results.length} dry-run admissions; rotations: ${JSON.stringify(rotations)}`);

      expect(results.length).toBeGreaterThanOrEqual(250);
      const failed = results
        .filter((x) => x.error || x.r!.status !== 200 || !x.r!.warnings.includes(warning) || imageOf(x.r!.body) !== 'registry.example/shop:v1')
        .map((x) => `#${x.i}: ${x.error ?? `${x.r!.status} ${JSON.stringify(x.r!.warnings)} ${statusMessage(x.r!)}`}`);
      expect(failed).toEqual([]);
      expect(rotations.map((r) => r.cert)).toEqual([1, 2]);
      // The webhook said so, with the new fingerprints; and dry runs changed nothing.
      const reloads = wh
        .logs()
        .split('\n')
        .filter((l) => l.includes('reloaded serving certificate'));
      expect(reloads.some((l) => l.includes(fingerprint(certs[1]!)))).toBe(true);
      expect(reloads.some((l) => l.includes(fingerprint(certs[2]!)))).toBe(true);
      const greenAfter = await getDep(ns.name, 'shop-green');
      expect(greenAfter.metadata.resourceVersion).toBe(greenBefore.metadata.resourceVersion);
      expect((await servedCertificate(wh.port, ca.certPem)).fingerprint256).toBe(fingerprint(certs[2]!));
    },
  );
});
