// 3. Through the real apiserver: a `kubectl set image`-equivalent PATCH
// (strategic merge of the container image) on the live colour of an enrolled
// app, with the real webhook registered, against the same PATCH on a
// Deployment that is not enrolled (the apiserver does not call the webhook for
// it). Interleaved, alternating images so that every PATCH is a real change.
// Issued with KubeClient: no kubectl start-up in the figures.
import type { Deployment } from '../../src/core/k8s-types.ts';
import { paths } from '../../src/kube/client.ts';
import { type Config, progress, type SectionResult } from '../lib/context.ts';
import { fmt, mean, percentile, ratio } from '../lib/stats.ts';
import { LiveObjects } from '../lib/watch.ts';
import { table } from '../lib/table.ts';
import { ServerProc } from '../lib/server-proc.ts';
import { selfSignedForBench } from './admission.ts';
import { clusterBench, FLOOR_LABEL, otherWebhooksNote, refreshOtherWebhooks, IMAGE, PATCH_APPS, waitAvailable } from './cluster.ts';

const PATCH_RATIO_GOAL = 1.5;
const APPLIED_GOAL_MS = 100;

type Kind = 'enrolled' | 'floor' | 'plain';

interface Sample {
  kind: Kind;
  i: number;
  ms: number;
  /** enrolled: from the PATCH's answer until the idle Deployment's generation moved (the reconciler applied it). */
  appliedMs?: number;
  /** enrolled: the live template kept its image (the change went to the idle colour). */
  redirected?: boolean;
  error?: string;
}

/** Sums and counts of the webhook's admission latency histogram, by endpoint. */
function admissionTimes(metrics: string): Record<string, { sum: number; count: number }> {
  const out: Record<string, { sum: number; count: number }> = {};
  for (const m of metrics.matchAll(/^kube_bluegreen_admission_duration_seconds_(sum|count)\{endpoint="(\w+)"\} ([\d.e+-]+)$/gm)) {
    const e = (out[m[2]!] ??= { sum: 0, count: 0 });
    e[m[1] as 'sum' | 'count'] = Number(m[3]);
  }
  return out;
}

/**
 * The floor: the bench's bare server (allow, no patch; bench/servers/bare.ts) registered as a
 * mutating webhook for one Deployment of our namespace. What any admission webhook costs on this
 * API server, whatever it does: the part of the enrolled PATCH's time no design of ours removes.
 */
async function startFloorWebhook(ns: string, c: Awaited<ReturnType<typeof clusterBench>>): Promise<{ proc: ServerProc; name: string }> {
  const tls = await selfSignedForBench();
  const proc = ServerProc.fork('bare', { label: 'floor webhook (allow-only)' });
  const { port } = await proc.call<{ port: number }>('start', { cert: tls.cert, key: tls.key });
  const name = `kbg-bench-floor-${ns}`;
  await c.client.create('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name },
    webhooks: [
      {
        name: 'floor.bench.bluegreen.io',
        admissionReviewVersions: ['v1'],
        clientConfig: { url: `https://127.0.0.1:${port}/mutate`, caBundle: Buffer.from(tls.ca).toString('base64') },
        rules: [{ apiGroups: ['apps'], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['deployments'], scope: 'Namespaced' }],
        objectSelector: { matchLabels: { [FLOOR_LABEL]: 'true' } },
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
        sideEffects: 'None',
        failurePolicy: 'Fail',
        matchPolicy: 'Equivalent',
        reinvocationPolicy: 'Never',
        timeoutSeconds: 10,
      },
    ],
  });
  // Registered once the API server calls it (its configuration cache lags the write).
  const served = async () => (await proc.call<{ served: number }>('stats')).served;
  const deadline = Date.now() + 30_000;
  while ((await served()) === 0) {
    if (Date.now() > deadline) throw new Error('the floor webhook was never called');
    await c.client.patch(paths.deployments(ns, PATCH_APPS.floor), { metadata: { annotations: { 'bench/probe': String(Date.now()) } } }, 'merge', {
      dryRun: 'All',
    });
    await new Promise((r) => setTimeout(r, 200));
  }
  return { proc, name };
}

export async function apiserverSection(cfg: Config): Promise<SectionResult> {
  const c = await clusterBench();
  const ns = c.namespace;
  const live = `${PATCH_APPS.enrolled}-blue`;
  const idle = `${PATCH_APPS.enrolled}-green`;
  const target = { enrolled: live, plain: PATCH_APPS.plain, floor: PATCH_APPS.floor };
  const floor = await startFloorWebhook(ns, c);
  const setImage = (name: string, image: string) =>
    c.client.patch<Deployment>(paths.deployments(ns, name), { spec: { template: { spec: { containers: [{ name: 'app', image }] } } } }, 'strategic');
  // The idle Deployment, watched: the moment its generation moves is the moment the reconciler's
  // patch of it was stored.
  const watched = new LiveObjects<Deployment>(c.client, paths.deployments(ns), { fieldSelector: `metadata.name=${idle}` });
  await watched.start();
  const idleGeneration = () => watched.objects.get(idle)?.metadata.generation ?? 0;
  let n = 0;
  const once = async (kind: Kind, i: number): Promise<Sample> => {
    // Alternate two images, neither the live one: every PATCH changes the template.
    const image = `registry.example/shop:bench-${n++ % 2 ? 'a' : 'b'}`;
    const before = idleGeneration();
    const t0 = performance.now();
    try {
      const d = await setImage(target[kind], image);
      const t1 = performance.now();
      const ms = t1 - t0;
      const now = d.spec?.template?.spec?.containers?.[0]?.image;
      if (kind !== 'enrolled') return { kind, i, ms, ...(now === image ? {} : { error: `image is ${now}` }) };
      // The event can come before the PATCH's answer: then the time is 0.
      const at = await watched.when(() => idleGeneration() > before, 10_000);
      return {
        kind,
        i,
        ms,
        redirected: now === IMAGE,
        ...(Number.isNaN(at) ? { error: 'the idle colour did not move within 10 s' } : { appliedMs: Math.max(0, at - t1) }),
      };
    } catch (e) {
      return { kind, i, ms: performance.now() - t0, error: (e as Error).message.slice(0, 300) };
    }
  };

  const warm = cfg.quick ? 2 : 5;
  progress(`apiserver: ${warm} warm-up PATCHes of each kind`);
  for (let i = 0; i < warm; i++) for (const k of ['enrolled', 'floor', 'plain'] as const) await once(k, -1);
  const before = admissionTimes((await c.webhook.get('/metrics')).body);
  const samples: Sample[] = [];
  const t0 = performance.now();
  for (let i = 0; i < cfg.patches; i++) {
    // Each kind first, second and third in turn.
    const kinds: Kind[] = ['enrolled', 'floor', 'plain'];
    const order = [...kinds.slice(i % 3), ...kinds.slice(0, i % 3)];
    for (const k of order) samples.push(await once(k, i));
    if ((i + 1) % 50 === 0) progress(`apiserver: ${i + 1}/${cfg.patches} pairs`);
  }
  const wallS = (performance.now() - t0) / 1000;
  watched.stop();
  await c.client.delete(`/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${floor.name}`).catch(() => undefined);
  await floor.proc.stop();
  const after = admissionTimes((await c.webhook.get('/metrics')).body);
  await refreshOtherWebhooks(c);
  const idleNow = await c.client.get<Deployment>(paths.deployments(ns, idle));
  const liveNow = await c.client.get<Deployment>(paths.deployments(ns, live));
  await waitAvailable(c.client, ns).catch(() => undefined);

  const of = (k: Sample['kind']) => samples.filter((s) => s.kind === k && !s.error).map((s) => s.ms);
  const errors = samples.filter((s) => s.error);
  const st = (xs: number[]) => ({
    n: xs.length,
    median: percentile(xs, 50),
    p90: percentile(xs, 90),
    p99: percentile(xs, 99),
    mean: mean(xs),
    max: Math.max(...xs),
  });
  const e = st(of('enrolled'));
  const p = st(of('plain'));
  const f = st(of('floor'));
  const applied = st(samples.filter((x) => x.appliedMs !== undefined).map((x) => x.appliedMs!));
  const redirected = samples.filter((s) => s.kind === 'enrolled' && s.redirected).length;
  const notRedirected = samples.filter((s) => s.kind === 'enrolled' && !s.error && !s.redirected).length;
  const hook = Object.fromEntries(
    ['mutate', 'validate'].map((ep) => {
      const d = { sum: (after[ep]?.sum ?? 0) - (before[ep]?.sum ?? 0), count: (after[ep]?.count ?? 0) - (before[ep]?.count ?? 0) };
      return [ep, { ...d, meanMs: d.count ? (d.sum / d.count) * 1000 : Number.NaN }];
    }),
  ) as Record<string, { sum: number; count: number; meanMs: number }>;

  type Stats = ReturnType<typeof st>;
  const statsRow = (name: string, x: Stats) => [name, String(x.n), fmt(x.median), fmt(x.p90), fmt(x.p99), fmt(x.mean), fmt(x.max)];
  const ratioRow = (name: string, x: Stats, y: Stats) => [
    name,
    '',
    ...(['median', 'p90', 'p99', 'mean'] as const).map((k) => `${fmt(ratio(x[k], y[k]))}x`),
    '',
  ];
  const rows = [
    statsRow('not enrolled (no webhook call)', p),
    statsRow('floor: an allow-only mutating webhook', f),
    statsRow('enrolled, live colour (redirected)', e),
    ratioRow('ratio (floor / plain)', f, p),
    ratioRow('ratio (enrolled / floor)', e, f),
    ['added latency (enrolled - plain)', '', fmt(e.median - p.median), fmt(e.p90 - p.p90), fmt(e.p99 - p.p99), fmt(e.mean - p.mean), ''],
    ratioRow('ratio (enrolled / plain)', e, p),
    statsRow('PATCH answered -> idle generation moved', applied),
  ];
  const liveImage = liveNow.spec?.template?.spec?.containers?.[0]?.image;
  const text = [
    `${cfg.patches} PATCHes of each kind, interleaved (${fmt(wallS, 1)} s), strategic merge of the container image (what \`kubectl set image\` sends),`,
    `sent with KubeClient over one keep-alive connection pool; every PATCH changes the image. Namespace ${ns}; webhook: the real process (src/webhook/main.ts, --log-level debug as test/e2e/helpers/webhook.ts starts it).`,
    '',
    table(['PATCH deployment (ms)', 'n', 'median', 'p90', 'p99', 'mean', 'max'], rows),
    '',
    `  The enrolled PATCHes are redirected every time, and that is the real cost measured here: the apiserver calls /mutate, where the webhook`,
    `  checks, reading only and both at once, that the user may patch the idle Deployment (a SubjectAccessReview) and that it would take the`,
    `  change (a server-side dry run, which itself goes through the webhooks); it answers with the live template restored and the change recorded.`,
    `  Then the apiserver calls /validate, and stores. The reconciler applies the record to the idle colour after that: its time is the last row.`,
    `  The floor is the bench's bare HTTPS server (allow, no patch) registered as a mutating webhook for Deployment ${PATCH_APPS.floor}: what one`,
    `  admission webhook call costs on this API server whatever the webhook does. The enrolled PATCH cannot be cheaper than it.`,
    `  Webhook's own time per request (its metrics, over these PATCHes): /mutate ${fmt(hook.mutate!.meanMs)} ms mean over ${hook.mutate!.count}, ` +
      `/validate ${fmt(hook.validate!.meanMs)} ms mean over ${hook.validate!.count}.`,
    `  Outcome: ${redirected} of ${cfg.patches} enrolled PATCHes redirected, ${notRedirected} reached the live colour; live ${live} image now ${liveImage}; ` +
      `idle ${idle} image now ${idleNow.spec?.template?.spec?.containers?.[0]?.image}.` +
      (errors.length ? ` ${errors.length} PATCHes failed, e.g. ${errors[0]!.kind}: ${errors[0]!.error}` : ' No PATCH failed.'),
    otherWebhooksNote(c),
  ].join('\n');
  return {
    name: 'apiserver',
    title: '3. Through the real apiserver: set-image PATCH on an enrolled live colour vs a Deployment not enrolled',
    text,
    goals: {
      [`apiserver: every enrolled PATCH redirected, none applied to the live colour, none failed`]:
        redirected === cfg.patches && errors.length === 0 && liveImage === IMAGE,
      [`apiserver: enrolled set-image PATCH <= ${PATCH_RATIO_GOAL}x the same PATCH not enrolled (median; now ${fmt(ratio(e.median, p.median))}x)`]:
        ratio(e.median, p.median) <= PATCH_RATIO_GOAL,
      [`apiserver: PATCH answered -> idle colour's generation moved, median < ${APPLIED_GOAL_MS} ms (now ${fmt(applied.median)} ms, p99 ${fmt(applied.p99)} ms)`]:
        applied.median < APPLIED_GOAL_MS,
    },
    data: {
      namespace: ns,
      patches: cfg.patches,
      wallS,
      plain: p,
      floor: f,
      enrolled: e,
      applied,
      added: { median: e.median - p.median, p99: e.p99 - p.p99 },
      webhookMetrics: hook,
      redirected,
      notRedirected,
      errors: errors.length,
      samples,
    },
  };
}
