#!/usr/bin/env node
// kubectl-bg: the executable kubectl finds on PATH (`kubectl bg ...`).
import { runCli } from './cli.ts';
import { realContext } from './real-context.ts';

const { ctx, dispose } = realContext();
try {
  process.exitCode = await runCli(process.argv.slice(2), ctx);
} finally {
  dispose();
}
