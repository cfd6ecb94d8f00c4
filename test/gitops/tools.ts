// The GitOps appliers' binaries: test/gitops/build.sh builds flux-apply into the
// control plane's cache (a cache hit takes a few milliseconds). The e2e global setup
// calls ensureGitopsTools() once so a cold build happens before the tests; the e2e
// helpers call it again (memoized per process) to learn the path.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface GitopsTools {
  /** The flux-apply executable (test/gitops/flux-apply). */
  fluxApply: string;
}

let cached: Promise<GitopsTools> | undefined;

/** Runs test/gitops/build.sh (its log goes to stderr) and returns the binaries' paths. */
export function ensureGitopsTools(): Promise<GitopsTools> {
  cached ??= build().catch((e: unknown) => {
    cached = undefined;
    throw e;
  });
  return cached;
}

async function build(): Promise<GitopsTools> {
  const script = fileURLToPath(new URL('./build.sh', import.meta.url));
  const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, sig) => resolve(c ?? (sig ? 128 : 1)));
  });
  if (code !== 0) throw new Error(`test/gitops/build.sh failed (exit ${code}); its log is above`);
  const m = /^FLUX_APPLY_BIN=(.+)$/m.exec(out);
  if (!m) throw new Error(`test/gitops/build.sh did not print FLUX_APPLY_BIN= (stdout was: ${JSON.stringify(out)})`);
  const fluxApply = m[1]!.trim();
  fs.accessSync(fluxApply, fs.constants.X_OK);
  return { fluxApply };
}
