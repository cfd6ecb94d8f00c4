// Vitest globalSetup for the e2e project: brings the local control plane up once
// (or reuses one that is already running) and, on teardown, stops it only if this
// run started it. KBG_KEEP_CLUSTER=1 leaves a cluster this run started running.
import { down, up } from './control-plane.ts';

const log = (msg: string) => process.stderr.write(`[cluster] ${msg}\n`);

export default async function setup(): Promise<() => Promise<void>> {
  const { reused } = await up({ log });
  return async () => {
    if (reused) {
      log('leaving the cluster running: it was running before this test run');
    } else if (process.env.KBG_KEEP_CLUSTER === '1') {
      log('KBG_KEEP_CLUSTER=1: leaving the cluster running (npm run cluster:down stops it)');
    } else {
      await down({ log });
    }
  };
}
