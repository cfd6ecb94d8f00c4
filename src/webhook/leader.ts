// Lease-based leader election (coordination.k8s.io/v1), the same protocol as
// client-go's leaderelection: one holder renews the Lease; others take it over
// once it has gone unrenewed for leaseDurationSeconds.
import { isStatus } from '../kube/errors.ts';
import type { Lease, WebhookCluster } from './cluster.ts';
import type { Logger } from './logger.ts';

export interface LeaderOptions {
  cluster: Pick<WebhookCluster, 'getLease' | 'createLease' | 'replaceLease'>;
  namespace: string;
  name: string;
  identity: string;
  log: Logger;
  leaseSeconds?: number;
  retryMs?: number;
  now?: () => Date;
}

/** RFC 3339 with microseconds, as MicroTime is serialised. */
function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly o: Required<Omit<LeaderOptions, 'now'>> & { now: () => Date };
  /** Called when leadership is gained or lost. */
  onChange: (leading: boolean) => void = () => {};

  constructor(o: LeaderOptions) {
    this.o = { leaseSeconds: 15, retryMs: 2000, now: () => new Date(), ...o };
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    const tick = async () => {
      if (this.stopped) return;
      try {
        this.set(await this.tryAcquireOrRenew());
      } catch (e) {
        this.o.log.warn({ err: (e as Error).message }, 'leader election: lease update failed');
        this.set(false);
      }
      if (!this.stopped) this.timer = setTimeout(tick, this.o.retryMs);
    };
    void tick();
  }

  private set(leading: boolean) {
    if (leading === this.leading) return;
    this.leading = leading;
    this.o.log.info({ lease: `${this.o.namespace}/${this.o.name}`, identity: this.o.identity, leading }, leading ? 'became leader' : 'not leader');
    this.onChange(leading);
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { cluster, namespace, name, identity } = this.o;
    const now = this.o.now();
    const lease = await cluster.getLease(namespace, name);
    if (!lease) {
      try {
        await cluster.createLease(namespace, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: this.o.leaseSeconds,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        });
        return true;
      } catch (e2) {
        if (isStatus(e2, 409)) return false;
        throw e2;
      }
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const renewed = spec.renewTime ? Date.parse(spec.renewTime) : 0;
    const expired = renewed + (spec.leaseDurationSeconds ?? this.o.leaseSeconds) * 1000 < now.getTime();
    if (holder !== identity && holder !== '' && !expired) return false;
    const next: Lease = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds: this.o.leaseSeconds,
        renewTime: microTime(now),
        ...(holder !== identity ? { acquireTime: microTime(now), leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
      },
    };
    try {
      await cluster.replaceLease(namespace, next);
      return true;
    } catch (e) {
      if (isStatus(e, 409)) return false;
      throw e;
    }
  }

  /** Stops campaigning and, when leading, gives the Lease up so another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (!this.leading) return;
    const { cluster, namespace, name } = this.o;
    try {
      const lease = await cluster.getLease(namespace, name);
      if (lease?.spec?.holderIdentity === this.o.identity)
        await cluster.replaceLease(namespace, { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 } });
    } catch (e) {
      this.o.log.warn({ err: (e as Error).message }, 'leader election: could not release the lease');
    }
    this.set(false);
  }
}
