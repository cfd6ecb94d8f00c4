// Vitest globalSetup for the e2e project: brings the local control plane up once
// (or reuses one that is already running) and, on teardown, stops it only if this
// run started it. KBG_KEEP_CLUSTER=1 leaves a cluster this run started running.
import { down, kubectl, up } from '../../local-cluster/control-plane.ts';
import { ensureGitopsTools } from '../gitops/tools.ts';

const log = (msg: string) => process.stderr.write(`[cluster] ${msg}\n`);

export default async function setup(): Promise<() => Promise<void>> {
  await ensureGitopsTools(); // flux-apply for the GitOps tests: built once, cached in the same place as the control plane
  const { reused } = await up({ log });
  await removeStaleTestWebhooks();
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

/**
 * A test run that died without stopping its webhook leaves configurations with
 * failurePolicy Fail pointing at a dead port, which would fail every later test
 * touching enrolled objects. Test webhooks are named kbg-e2e-*: remove them.
 */
async function removeStaleTestWebhooks(): Promise<void> {
  for (const kind of ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations']) {
    const r = await kubectl(['get', kind, '-o', 'jsonpath={.items[*].metadata.name}']);
    const stale = r.stdout.split(/\s+/).filter((n) => n.startsWith('kbg-e2e-'));
    if (stale.length) {
      log(`removing stale test ${kind}: ${stale.join(', ')}`);
      await kubectl(['delete', kind, ...stale, '--ignore-not-found']);
    }
  }
}
