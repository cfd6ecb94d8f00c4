// `kubectl bg` as a child process (node plugin/src/main.ts), the way a user's
// kubectl runs it, against the local control plane.
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { clusterEnv } from './cluster.ts';
import { NODE } from './webhook.ts';

const MAIN = join(resolve(import.meta.dirname, '../../..'), 'plugin/src/main.ts');

export interface PluginResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a program to completion (killed after timeoutMs): exit code, output, wall time. */
export function runProcess(exe: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs = 120_000, cwd?: string): Promise<PluginResult> {
  const start = performance.now();
  return new Promise((res, rej) => {
    const c = spawn(exe, args, { env, stdio: ['ignore', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('error', rej);
    c.on('close', (code, sig) => {
      clearTimeout(t);
      res({ code: code ?? (sig ? 128 : 1), stdout, stderr, ms: performance.now() - start });
    });
  });
}

export function kubectlBg(namespace: string, args: readonly string[], timeoutMs = 60_000): Promise<PluginResult> {
  const env = clusterEnv();
  return runProcess(
    NODE,
    [MAIN, ...args, '-n', namespace, '--kubeconfig', env.kubeconfig],
    { ...process.env, HOME: env.home, KUBECONFIG: env.kubeconfig, NO_PROXY: '127.0.0.1,localhost', NO_COLOR: '1' },
    timeoutMs,
  );
}

/** runProcess, and its stdout when it exits 0; otherwise an error with the command and the end of its output. */
export async function runProcessOk(exe: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs = 120_000, cwd?: string): Promise<string> {
  const r = await runProcess(exe, args, env, timeoutMs, cwd);
  if (r.code !== 0) throw new Error(`${exe} ${args.join(' ')} exited ${r.code}:\n${(r.stderr + r.stdout).slice(-4000)}`);
  return r.stdout;
}
