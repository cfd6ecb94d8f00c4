// A live copy of a set of cluster objects, kept by list + watch (KubeClient.watch),
// with waiters that resolve at the moment (performance.now()) the event that
// makes their condition true arrives. For timing switches without polling.
import { isStatus, type KubeClient } from '../../src/kube/client.ts';

interface Meta {
  metadata: { name?: string; resourceVersion?: string };
}

interface Waiter<T> {
  pred: (objs: ReadonlyMap<string, T>) => boolean;
  resolve: (t: number) => void;
  timer: NodeJS.Timeout;
}

export class LiveObjects<T extends Meta> {
  readonly objects = new Map<string, T>();
  private readonly waiters = new Set<Waiter<T>>();
  private readonly abort = new AbortController();
  private readonly client: KubeClient;
  private readonly path: string;
  private readonly query: Record<string, string>;
  /** Events received (a liveness figure for the report). */
  events = 0;

  constructor(client: KubeClient, path: string, query: Record<string, string> = {}) {
    this.client = client;
    this.path = path;
    this.query = query;
  }

  /** Lists, then watches in the background; resolves once the list is in. */
  async start(): Promise<void> {
    let rv = await this.relist();
    void (async () => {
      while (!this.abort.signal.aborted) {
        try {
          rv = await this.client.watch<T>(
            this.path,
            { ...this.query, resourceVersion: rv, timeoutSeconds: 300 },
            (ev) => this.apply(ev.type, ev.object),
            this.abort.signal,
          );
        } catch (e) {
          if (this.abort.signal.aborted) return;
          if (!isStatus(e, 410)) await new Promise((r) => setTimeout(r, 200));
          rv = await this.relist().catch(() => undefined);
        }
      }
    })();
  }

  private async relist(): Promise<string | undefined> {
    const list = await this.client.list<T>(this.path, this.query);
    this.objects.clear();
    for (const o of list.items) this.objects.set(o.metadata.name ?? '', o);
    this.check();
    return list.metadata.resourceVersion;
  }

  private apply(type: string, o: T) {
    if (type === 'BOOKMARK') return;
    this.events++;
    if (type === 'DELETED') this.objects.delete(o.metadata.name ?? '');
    else this.objects.set(o.metadata.name ?? '', o);
    this.check();
  }

  private check() {
    const now = performance.now();
    for (const w of this.waiters)
      if (w.pred(this.objects)) {
        this.waiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(now);
      }
  }

  /** Resolves with the arrival time of the event after which pred holds (or now, if it holds already); NaN after timeoutMs. */
  when(pred: (objs: ReadonlyMap<string, T>) => boolean, timeoutMs = 60_000): Promise<number> {
    if (pred(this.objects)) return Promise.resolve(performance.now());
    return new Promise((resolve) => {
      const w: Waiter<T> = {
        pred,
        resolve,
        timer: setTimeout(() => {
          this.waiters.delete(w);
          resolve(Number.NaN);
        }, timeoutMs),
      };
      this.waiters.add(w);
    });
  }

  stop(): void {
    this.abort.abort();
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.resolve(Number.NaN);
    }
    this.waiters.clear();
  }
}
