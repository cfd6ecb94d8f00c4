#!/usr/bin/env node
// kubectl-bg on Node (npm's plugin/bin/kubectl-bg.cjs checks the Node version, then imports the
// built copy of this file; the single executable runs exe.ts instead).
//
// Every run is a new process, and loading the modules is much of a short command's time. Node's compile cache keeps their compiled code on disk between runs
// (os.tmpdir()/node-compile-cache, keyed by Node version; NODE_DISABLE_COMPILE_CACHE=1 turns it
// off), so the modules are imported only after it is on.
import module from 'node:module';

module.enableCompileCache?.();
const [{ runCli }, { realContext }] = await Promise.all([import('./cli.ts'), import('./real-context.ts')]);

const { ctx, dispose } = realContext();
try {
  process.exitCode = await runCli(process.argv.slice(2), ctx);
} finally {
  dispose();
}
