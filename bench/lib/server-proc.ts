// The parent side of a benchmark server: forks bench/servers/<name>.ts with
// node 24 (this process's executable) and talks to it over IPC.
import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import type { ServerStats } from '../servers/ipc.ts';

export const BENCH_DIR = join(import.meta.dirname, '..');
export const REPO = join(BENCH_DIR, '..');

export interface ForkOptions {
  /** Extra node flags (--expose-gc is always given). */
  execArgv?: string[];
  label?: string;
}

export class ServerProc {
  readonly label: string;
  private readonly child: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  private exited = false;

  private constructor(child: ChildProcess, label: string) {
    this.child = child;
    this.label = label;
    child.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`${label}: ${m.error}`));
    });
    child.on('exit', (code, signal) => {
      this.exited = true;
      for (const p of this.pending.values()) p.reject(new Error(`${label} exited (${signal ?? code})`));
      this.pending.clear();
    });
  }

  /** Forks bench/servers/<entry>.ts. */
  static fork(entry: string, o: ForkOptions = {}): ServerProc {
    const child = fork(join(BENCH_DIR, 'servers', `${entry}.ts`), [], {
      execPath: process.execPath,
      execArgv: ['--expose-gc', ...(o.execArgv ?? [])],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, NODE_ENV: 'production' },
    });
    return new ServerProc(child, o.label ?? entry);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  call<T>(op: string, args?: unknown): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.label} has exited`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ id, op, args });
    });
  }

  stats(): Promise<ServerStats> {
    return this.call<ServerStats>('stats');
  }

  /** Asks the server to close and exit (so a --cpu-prof profile is written), then waits for the exit. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
    await this.call('stop').catch(() => undefined);
    const t = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(t);
  }
}
