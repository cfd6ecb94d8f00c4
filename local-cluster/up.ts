// npm run cluster:up — builds the control plane if needed, starts it (or reuses a
// running one) and returns with it running in the background. Ctrl-C while it
// starts stops whatever it had started.
import { up } from './control-plane.ts';

const abort = new AbortController();
const onSignal = (sig: NodeJS.Signals) => {
  if (abort.signal.aborted) process.exit(130); // second signal: give up at once
  process.stderr.write(`[cluster] ${sig}: stopping what was started\n`);
  abort.abort(new Error(`interrupted by ${sig}`));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

try {
  const { env, reused } = await up({ signal: abort.signal });
  process.stdout.write(
    `${reused ? 'Reused the running' : 'Started the'} local cluster at ${env.apiserver}\n` +
      `  export KUBECONFIG=${env.kubeconfig}\n` +
      `  kubectl: ${env.kubectl}\n` +
      `Stop it with: npm run cluster:down\n`,
  );
} catch (e) {
  process.stderr.write(`cluster:up failed: ${(e as Error).message}\n`);
  process.exitCode = abort.signal.aborted ? 130 : 1;
} finally {
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
}
