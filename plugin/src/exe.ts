// The entry of the bundled plugin (scripts/plugin-dist.ts): one CommonJS script that
// esbuild makes from main.ts's and complete.ts's code and that Node's single executable
// application runs. Invoked as kubectl_complete-bg (a copy or link of the executable),
// it answers kubectl's completion requests as `kubectl-bg __complete ...` does.
// No top-level await: a single executable's main script is CommonJS.
import { basename } from 'node:path';
import { runCli } from './cli.ts';
import { realContext } from './real-context.ts';

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const asComplete = /^kubectl_complete-bg(\.exe)?$/.test(basename(process.argv0 || ''));
  const { ctx, dispose } = realContext();
  try {
    process.exitCode = await runCli(asComplete ? ['__complete', ...argv] : argv, ctx);
  } finally {
    dispose();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`error: ${(e as Error)?.message ?? String(e)}\n`);
  process.exitCode = 1;
});
