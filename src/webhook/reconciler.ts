// The reconciler: the only part of the webhook process that writes to enrolled
// apps. Leader-elected. For each app that changed (or every app, every resync),
// it reads the app afresh, asks the core what to do next (planReconcile), does
// that one thing with preconditions, and asks again: recorded changes reach the
// idle colour, the live labels follow the active Service whatever changed it,
// and the old colour is scaled down when its warm period is over.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { type AppObjects, type AppView, resolveApp } from '../core/app.ts';
import { CHECK_TEMPLATE_ANNOTATION, type CheckAction, checkJob, checkTemplateOf, type JobOutcome, planChecks } from '../core/checks.ts';
import { nsFlag } from '../core/commands.ts';
import { outcomeOps, outcomeRecord, planReconcile, type ReconcileAction } from '../core/reconcile.ts';
import type { RecordSeal } from '../core/pending-change.ts';
import { isStatus, isPatchTestFailure } from '../kube/errors.ts';
import { type AppCache, knownObjects } from './cache.ts';
import type { KubeEvent, WebhookCluster } from './cluster.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';

export interface ReconcilerDeps {
  cluster: WebhookCluster;
  cache: AppCache;
  seal: RecordSeal;
  log: Logger;
  now: () => Date;
  isLeader: () => boolean;
  metrics?: Metrics;
  /** How often every app is looked at even without a change (default 30 s). */
  resyncMs?: number;
  /** Max actions per app per pass (a loop guard). */
  maxActions?: number;
}

/** Conflicts and failed JSON-patch tests: something changed since the read. Read again. */
function isRace(e: unknown): boolean {
  return isStatus(e, 409) || isPatchTestFailure(e);
}

/** Errors that no retry mends: the change itself (invalid), or rights or objects that are missing. */
function isPermanent(e: unknown): boolean {
  return isStatus(e, 400, 403, 404, 422) && !isRace(e);
}

const key = (ns: string, app: string) => `${ns}\u0000${app}`;

export class Reconciler {
  private readonly d: Required<Omit<ReconcilerDeps, 'metrics'>> & { metrics?: Metrics };
  private readonly queue = new Set<string>();
  private readonly apps = new Map<string, { namespace: string; app: string }>();
  /** Scheduled looks, the earliest per app. */
  private readonly later = new Map<string, { timer: NodeJS.Timeout; at: number }>();
  private readonly failures = new Map<string, number>();
  /** namespace/deployment -> when first seen labelled live while the Service selects the other colour. */
  private readonly staleLive = new Map<string, number>();
  /** namespace/app -> the HPA warning last recorded as an Event (see warnHpa). */
  private readonly hpaWarned = new Map<string, string>();
  private draining: Promise<void> | undefined;
  private resync: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(d: ReconcilerDeps) {
    this.d = { resyncMs: 30_000, maxActions: 8, ...d };
  }

  start(): void {
    this.resync = setInterval(() => this.enqueueAll(), this.d.resyncMs);
    this.resync.unref();
    this.enqueueAll();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.resync);
    for (const t of this.later.values()) clearTimeout(t.timer);
    this.later.clear();
  }

  enqueueAll(): void {
    for (const a of this.d.cache.apps()) this.enqueue(a.namespace, a.app);
  }

  enqueue(namespace: string, app: string, delayMs = 0): void {
    if (this.stopped) return;
    const k = key(namespace, app);
    if (delayMs > 0) {
      const at = Date.now() + delayMs;
      const pending = this.later.get(k);
      if (pending && pending.at <= at) return;
      if (pending) clearTimeout(pending.timer);
      const timer = setTimeout(
        () => {
          this.later.delete(k);
          this.enqueue(namespace, app);
        },
        Math.min(delayMs, 2 ** 31 - 1),
      );
      timer.unref();
      this.later.set(k, { timer, at });
      return;
    }
    this.apps.set(k, { namespace, app });
    this.queue.add(k);
    this.draining ??= this.drain().finally(() => (this.draining = undefined));
  }

  /** Resolves once the queue is empty (tests). */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drain(): Promise<void> {
    while (this.queue.size && !this.stopped) {
      const k = this.queue.values().next().value as string;
      this.queue.delete(k);
      const a = this.apps.get(k);
      if (!a || !this.d.isLeader() || !this.d.cache.synced) continue;
      try {
        await this.reconcile(a.namespace, a.app);
        this.failures.delete(k);
      } catch (e) {
        const n = (this.failures.get(k) ?? 0) + 1;
        this.failures.set(k, n);
        const retryMs = Math.min(30_000, 500 * 2 ** (n - 1));
        this.d.log.warn({ namespace: a.namespace, app: a.app, err: (e as Error).message, retryInMs: retryMs }, 'reconcile failed; will retry');
        this.enqueue(a.namespace, a.app, retryMs);
      }
    }
  }

  /** One app: act until nothing is left to do. A cheap look at the cached view first; every action on a fresh read. */
  async reconcile(namespace: string, app: string): Promise<void> {
    const cached = this.d.cache.view(namespace, app);
    if (cached) {
      const p = this.plan(cached);
      await this.warnHpa(cached, p.hpaWarning);
      // Apps with release gates plan their checks from a fresh read (their Jobs are read too).
      if (!p.action && !checkTemplateOf(cached, 'pre') && !checkTemplateOf(cached, 'post')) {
        if (p.recheckMs !== undefined) this.enqueue(namespace, app, p.recheckMs);
        return;
      }
    }
    for (let i = 0; i < this.d.maxActions; i++) {
      // Fresh: a GET of each object the cache files under the app (as fresh as a LIST, without its
      // wait for the API server's watch cache; see ReadAppOptions), or a LIST when the cache cannot say.
      const known = knownObjects(this.d.cache, namespace, app);
      const objs: AppObjects = await this.d.cluster.readApp(namespace, app, known ? { known } : undefined);
      if (!objs.deployments.length && !objs.services.length) return;
      const view = resolveApp(objs);
      const plan = this.plan(view);
      await this.warnHpa(view, plan.hpaWarning);
      if (plan.recheckMs !== undefined) this.enqueue(namespace, app, plan.recheckMs);
      if (!plan.action) {
        const checks = await this.planChecks(view);
        if (checks.recheckMs !== undefined) this.enqueue(namespace, app, checks.recheckMs);
        if (!checks.action) return;
        await this.performCheck(view, checks.action);
        continue;
      }
      const done = await this.perform(view, plan.action);
      if (done === 'stop') return;
    }
    this.d.log.warn({ namespace, app }, 'reconcile: still more to do after the pass limit; will look again');
    this.enqueue(namespace, app, 1000);
  }

  private plan(view: AppView) {
    const since = new Map<string, number>();
    const prefix = `${view.namespace}/`;
    for (const [k, t] of this.staleLive) if (k.startsWith(prefix)) since.set(k.slice(prefix.length), t);
    const now = this.d.now();
    const plan = planReconcile({ view, seal: this.d.seal, now, staleLiveSince: since });
    for (const d of Object.values(view.deployments)) {
      const name = d?.metadata.name;
      if (!name) continue;
      const k = prefix + name;
      if (plan.staleLive.includes(name)) {
        if (!this.staleLive.has(k)) this.staleLive.set(k, now.getTime());
      } else this.staleLive.delete(k);
    }
    return plan;
  }

  private async perform(view: AppView, a: ReconcileAction): Promise<'next' | 'stop'> {
    const { cluster, log } = this.d;
    const ns = view.namespace;
    const ctx = { namespace: ns, app: view.app };
    try {
      switch (a.kind) {
        case 'change': {
          try {
            await cluster.patchDeployment(ns, a.target, a.ops, 'json');
          } catch (e) {
            if (!isPermanent(e) || a.outcome !== 'applied') throw e;
            // The change itself cannot be stored (it passed the dry run at admission; something
            // changed since): say so on the target, without the change.
            const target = Object.values(view.deployments).find((d) => d?.metadata.name === a.target);
            const reason = `${a.target} refused it: ${(e as Error).message}`;
            if (target)
              await this.perform(view, {
                ...a,
                ops: outcomeOps(target, outcomeRecord(a.holder, a.record, false, this.d.now(), reason)),
                outcome: 'not-applied',
                reason,
              });
            return 'next';
          }
          const who = a.record.by || 'an unknown user';
          const replaced = (a.record.replaces ?? []).map((r): [string, 'Warning', string, string] => [
            a.holder,
            'Warning',
            'ChangeReplaced',
            `the ${r.summary} by ${r.by || 'an unknown user'} (request ${r.request}) was replaced by the ${a.record.summary} by ${who} before it was applied`,
          ]);
          if (a.record.replacedMore)
            replaced.push([
              a.holder,
              'Warning',
              'ChangeReplaced',
              `${a.record.replacedMore} more earlier changes were replaced by the ${a.record.summary} by ${who} before they were applied`,
            ]);
          if (a.outcome === 'not-applied') {
            this.d.metrics?.redirects.inc({ result: 'not-applied' });
            log.warn({ ...ctx, holder: a.holder, target: a.target, reason: a.reason, request: a.record.request }, 'a recorded change was not applied');
            const message = `the ${a.record.summary} by ${who} (request ${a.record.request}) was not applied: ${a.reason}`;
            await this.events(
              view,
              [...new Set([a.holder, a.target])]
                .map((n) => [n, 'Warning', 'ChangeNotApplied', message] as [string, 'Warning', string, string])
                .concat(replaced),
            );
            return 'next';
          }
          this.d.metrics?.redirects.inc({ result: a.outcome });
          log.info(
            { ...ctx, from: a.holder, to: a.target, by: a.record.by, request: a.record.request, outcome: a.outcome },
            `the ${a.record.summary} reached ${a.target}`,
          );
          if (a.outcome === 'applied')
            await this.events(view, [
              [a.holder, 'Normal', 'ChangeRedirected', `the ${a.record.summary} by ${who} went to ${a.target} (idle); ${a.holder} kept its template`],
              [
                a.target,
                'Normal',
                'RedirectedChange',
                `received the ${a.record.summary} by ${who} made to ${a.holder}; run 'kubectl bg switch ${view.app}${nsFlag(ns)}' when it is ready`,
              ],
              ...replaced,
            ]);
          else if (replaced.length) await this.events(view, replaced);
          return 'next';
        }
        case 'drop-planted':
          await cluster.patchDeployment(ns, a.holder, a.ops, 'json');
          log.warn({ ...ctx, holder: a.holder }, a.reason);
          await this.events(view, [[a.holder, 'Warning', 'ChangeNotApplied', a.reason]]);
          return 'next';
        case 'label':
          await cluster.patchDeployment(ns, a.deployment, a.patch, 'merge');
          log.info({ ...ctx, deployment: a.deployment, live: a.value }, 'live label set from the active Service');
          return 'next';
        case 'scale-down':
          await cluster.patchDeployment(ns, a.deployment, a.ops, 'json');
          await cluster.patchService(ns, a.service, a.servicePatch, 'merge');
          log.info({ ...ctx, deployment: a.deployment }, 'scaled the old colour down after its warm period');
          return 'next';
        case 'clear-scale-down':
          await cluster.patchService(ns, a.service, a.servicePatch, 'merge');
          log.info({ ...ctx, reason: a.reason }, 'scale-down not needed');
          return 'next';
        case 'retarget-hpa': {
          await cluster.patchHpa(ns, a.hpa, a.ops, 'json');
          const message = `now scales ${a.to}, the live colour (was ${a.from})`;
          log.info({ ...ctx, hpa: a.hpa, from: a.from, to: a.to }, 'HorizontalPodAutoscaler follows the live colour');
          await this.hpaEvent(view, a.hpa, 'Normal', 'RetargetedToLive', message);
          return 'next';
        }
        case 'keep-idle-capacity':
          await cluster.patchDeployment(ns, a.deployment, a.ops, 'json');
          log.info(
            { ...ctx, deployment: a.deployment, hpa: a.hpa, from: a.from, to: a.to },
            'idle colour raised to the replicas the HPA runs the live colour at',
          );
          await this.events(view, [
            [
              a.deployment,
              'Normal',
              'ScaledToLiveCount',
              `scaled from ${a.from} to ${a.to} replicas, as many as HorizontalPodAutoscaler ${a.hpa} runs the live colour at, so that it can take the load at the switch`,
            ],
          ]);
          return 'next';
      }
    } catch (e) {
      if (isRace(e)) return 'next';
      if (isStatus(e, 404)) return 'next';
      throw e;
    }
  }

  /** planChecks, with the Jobs its running checks name read first. */
  private async planChecks(view: AppView) {
    const input = { view, seal: this.d.seal, now: this.d.now(), jobs: new Map<string, JobOutcome | null>(), suffix: randomBytes(2).toString('hex') };
    let p = planChecks(input);
    if (p.needJobs.length) {
      for (const j of p.needJobs) input.jobs.set(j, await this.d.cluster.jobOutcome(view.namespace, j));
      p = planChecks(input);
    }
    return p;
  }

  /** Start a check (its record first, then its Job), record how one ended, or roll back after a failed post-switch check. */
  private async performCheck(view: AppView, a: CheckAction): Promise<void> {
    const { cluster, log } = this.d;
    const ns = view.namespace;
    const ctx = { namespace: ns, app: view.app, deployment: a.deployment, phase: a.kind === 'check-rollback' ? 'post' : a.phase };
    try {
      if (a.kind === 'start-check') {
        const target = Object.values(view.deployments).find((d) => d?.metadata.name === a.deployment);
        const cron = await cluster.getCronJob(ns, a.template);
        if (!cron || !target) {
          const reason = `CronJob ${a.template} (named by ${CHECK_TEMPLATE_ANNOTATION[a.phase]}) does not exist`;
          const failed = this.d.seal.sealObject({ ...a.record, state: 'failed', finishedAt: this.d.now().toISOString(), reason });
          await cluster.patchDeployment(ns, a.deployment, [...a.ops.slice(0, -1), { ...a.ops.at(-1)!, value: failed }], 'json');
          await this.events(view, [[a.deployment, 'Warning', 'CheckFailed', reason]]);
          return;
        }
        await cluster.patchDeployment(ns, a.deployment, a.ops, 'json');
        await cluster.createJob(ns, checkJob(cron, view, a, target));
        log.info({ ...ctx, job: a.job, version: a.record.version }, 'check started');
        await this.events(view, [
          [a.deployment, 'Normal', 'CheckStarted', `${a.phase}-switch check of version ${a.record.version}: Job ${a.job} from CronJob ${a.template}`],
        ]);
        return;
      }
      if (a.kind === 'check-rollback') await cluster.patchService(ns, a.service, a.servicePatch, 'merge');
      await cluster.patchDeployment(ns, a.deployment, a.ops, 'json');
      const r = a.record;
      log.info({ ...ctx, job: r.job, state: r.state, reason: r.reason }, 'check ended');
      const list: [string, 'Normal' | 'Warning', string, string][] = [
        [
          a.deployment,
          r.state === 'passed' ? 'Normal' : 'Warning',
          r.state === 'passed' ? 'CheckPassed' : 'CheckFailed',
          `${r.phase}-switch check of version ${r.version} (Job ${r.job}) ${r.state}${r.reason ? `: ${r.reason}` : ''}`,
        ],
      ];
      if (a.kind === 'check-rollback') list.push([a.deployment, 'Warning', 'RolledBack', `traffic sent back to ${a.to}: ${a.reason}`]);
      await this.events(view, list);
    } catch (e) {
      if (isRace(e) || isStatus(e, 404)) return;
      throw e;
    }
  }

  /** An HPA warning as a Warning Event on the app's HPAs, once per app and message (a new message replaces the old one). */
  private async warnHpa(view: AppView, warning: string | undefined): Promise<void> {
    const k = key(view.namespace, view.app);
    if (warning === undefined) {
      this.hpaWarned.delete(k);
      return;
    }
    if (this.hpaWarned.get(k) === warning) return;
    this.hpaWarned.set(k, warning);
    this.d.log.warn({ namespace: view.namespace, app: view.app, reason: warning }, 'HorizontalPodAutoscaler not followed');
    await Promise.all(view.hpas.map((h) => this.hpaEvent(view, h.metadata.name ?? '', 'Warning', 'NotFollowed', warning)));
  }

  private async hpaEvent(view: AppView, name: string, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const uid = view.hpas.find((h) => h.metadata.name === name)?.metadata.uid;
    await this.createEvent(
      view,
      { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', name, namespace: view.namespace, ...(uid ? { uid } : {}) },
      type,
      reason,
      message,
    );
  }

  private async createEvent(
    view: AppView,
    involvedObject: KubeEvent['involvedObject'],
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void> {
    const now = this.d.now().toISOString();
    const ev: KubeEvent = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: `${involvedObject.name}.`, namespace: view.namespace },
      involvedObject,
      reason,
      message,
      type,
      source: { component: 'kube-bluegreen' },
      reportingComponent: 'bluegreen.io/reconciler',
      reportingInstance: hostname(),
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    await this.d.cluster
      .createEvent(view.namespace, ev)
      .catch((e: Error) => this.d.log.warn({ err: e.message, object: involvedObject.name }, 'could not record an Event'));
  }

  private async events(view: AppView, list: [string, 'Normal' | 'Warning', string, string][]): Promise<void> {
    await Promise.all(
      list.map(([name, type, reason, message]) => {
        const uid = Object.values(view.deployments).find((d) => d?.metadata.name === name)?.metadata.uid;
        return this.createEvent(
          view,
          { apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: view.namespace, ...(uid ? { uid } : {}) },
          type,
          reason,
          message,
        );
      }),
    );
  }
}
