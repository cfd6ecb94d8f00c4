#!/usr/bin/env node
// kubectl_complete-bg: kubectl (1.26+) runs it to complete `kubectl bg ...`.
// Arguments: the words after `kubectl bg`, the last one being the word to complete.
import { buildProgram } from './cli.ts';
import { complete, formatCompletions } from './completions.ts';
import { realContext } from './real-context.ts';

const { ctx, dispose } = realContext();
try {
  ctx.out.write(formatCompletions(await complete(buildProgram(ctx), process.argv.slice(2), ctx)));
} finally {
  dispose();
}
