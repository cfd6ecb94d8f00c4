// 5. Cache memory: the webhook's store filled with 10,000 enrolled apps (2
// Deployments + 1 Service each, clones of a captured app), keeping whole
// objects as the API server sends them (the baseline: what the cache kept
// before) against keeping only what the decisions read (slimObject). Each in
// its own child process; RSS and JS heap after a forced GC. Per 1,000 apps is
// the slope between 5,000 and 10,000 apps, so what a process pays once (V8's
// young generation grown during the fill, code) is not spread over the apps.
// No load: this is the store alone.
import { type Config, progress, type SectionResult } from '../lib/context.ts';
import { MUTATE_FIXTURE } from '../lib/fixtures.ts';
import { ServerProc } from '../lib/server-proc.ts';
import { fmt, fmtInt, mb } from '../lib/stats.ts';
import { table } from '../lib/table.ts';
import type { WebhookStarted } from '../servers/webhook.ts';
import { selfSignedForBench } from './admission.ts';

export const MEMORY_GOAL_MB = 6;
/** The image's V8 young-generation cap (MB per semi-space). */
export const SEMI_SPACE_MB = 8;

export async function memorySection(cfg: Config): Promise<SectionResult> {
  const tls = await selfSignedForBench();
  const [small, large] = cfg.quick ? [500, 1_000] : [5_000, 10_000];
  const fill = async (kind: string, wholeObjects: boolean, apps: number) => {
    // As the image runs the webhook (Dockerfile: NODE_OPTIONS=--max-semi-space-size=8): V8 otherwise
    // grows its young generation with the allocation rate of the fill, to over 100 MB of RSS.
    const proc = ServerProc.fork('webhook', { label: `webhook server (${kind}, ${apps} apps)`, execArgv: [`--max-semi-space-size=${SEMI_SPACE_MB}`] });
    try {
      const started = await proc.call<WebhookStarted>('start', { cert: tls.cert, key: tls.key, fixture: MUTATE_FIXTURE, apps, wholeObjects });
      progress(
        `memory: ${kind}: ${fmtInt(started.objects)} objects, RSS ${fmt(mb(started.memory.filled.rss), 1)} MB, heap ${fmt(mb(started.memory.filled.heapUsed), 1)} MB`,
      );
      return started;
    } finally {
      await proc.stop();
    }
  };
  const rows: { kind: string; small: WebhookStarted; large: WebhookStarted; per: { rss: number; heap: number } }[] = [];
  for (const [kind, wholeObjects] of [
    ['whole objects (before)', true],
    ['only what the decisions read (slimObject)', false],
  ] as const) {
    const a = await fill(kind, wholeObjects, small);
    const b = await fill(kind, wholeObjects, large);
    const k = 1000 / (b.apps - a.apps);
    rows.push({
      kind,
      small: a,
      large: b,
      per: { rss: mb(b.memory.filled.rss - a.memory.filled.rss) * k, heap: mb(b.memory.filled.heapUsed - a.memory.filled.heapUsed) * k },
    });
  }
  const [before, after] = rows;
  const text = [
    `Stores of ${fmtInt(small)} and ${fmtInt(large)} apps (3 objects each), each in its own process (node --max-semi-space-size=${SEMI_SPACE_MB}, as the image runs it), after a forced GC${after!.large.memory.gc ? '' : ' (NOT available)'}; per 1,000 apps = the difference / ${fmtInt((large - small) / 1000)}.`,
    '',
    table(
      ['store keeps', 'RSS per 1,000 apps MB', 'JS heap per 1,000 apps MB', `RSS at ${fmtInt(small)} / ${fmtInt(large)} apps MB`],
      [before!, after!].map((r) => [
        r.kind,
        fmt(r.per.rss, 2),
        fmt(r.per.heap, 2),
        `${fmt(mb(r.small.memory.filled.rss), 1)} / ${fmt(mb(r.large.memory.filled.rss), 1)}`,
      ]),
    ),
    `  slimObject drops managedFields, every annotation that is not bluegreen.io/* (kubectl's last-applied-configuration is a whole copy of the object),`,
    `  status conditions, and of a Service all but its selector; a request carries the whole object whenever one is needed.`,
  ].join('\n');
  return {
    name: 'memory',
    title: '5. Cache memory per 1,000 enrolled apps: whole objects vs what the decisions read',
    text,
    goals: {
      [`memory: cache RSS per 1,000 apps <= ${MEMORY_GOAL_MB} MB (now ${fmt(after!.per.rss, 2)} MB; whole objects ${fmt(before!.per.rss, 2)} MB)`]:
        after!.per.rss <= MEMORY_GOAL_MB,
    },
    data: {
      small,
      large,
      before: { ...before!.per, small: before!.small.memory, large: before!.large.memory },
      after: { ...after!.per, small: after!.small.memory, large: after!.large.memory },
    },
  };
}
