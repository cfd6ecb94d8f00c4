// kwok's pod stages (local-cluster/kwok/pod-stages.yaml) with the real Job controller of the
// local control plane: a Job's pod runs to the end its template asks for, and the Job is
// Complete or Failed for it; Deployment pods still become Ready and keep running.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apply, createNamespace, kubectlJson, kubectlOk, waitFor, type TestNamespace } from './helpers/cluster.ts';
import { KWOK_RESULT_LABEL, kwokJob, kwokPodMetadata, waitForJobDone } from './helpers/kwok.ts';

interface ContainerStatus {
  name: string;
  ready: boolean;
  restartCount: number;
  state: {
    running?: { startedAt: string };
    terminated?: { exitCode: number; reason?: string; startedAt?: string; finishedAt?: string };
    waiting?: { reason?: string };
  };
  lastState?: { terminated?: { exitCode: number } };
}
interface Pod {
  metadata: { name: string; labels?: Record<string, string> };
  status: { phase?: string; conditions?: { type: string; status: string }[]; containerStatuses?: ContainerStatus[] };
}

const ready = (p: Pod) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

async function jobPods(ns: string, job: string): Promise<Pod[]> {
  return (await kubectlJson<{ items: Pod[] }>(['-n', ns, 'get', 'pods', '-l', `batch.kubernetes.io/job-name=${job}`])).items;
}

function deployment(
  name: string,
  replicas: number,
  podMeta: { labels: Record<string, string>; annotations: Record<string, string> } = { labels: {}, annotations: {} },
) {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name, ...podMeta.labels }, annotations: podMeta.annotations },
        spec: { containers: [{ name: 'app', image: 'registry.example/app:v1' }] },
      },
    },
  };
}

let ns: TestNamespace;

beforeAll(async () => {
  ns = await createNamespace('e2e-kwok-stages');
});

afterAll(async () => {
  await ns?.cleanup();
});

describe('kwok stages for Job pods', () => {
  it(`a Job whose pod is labelled ${KWOK_RESULT_LABEL}=succeed runs for its duration, exits 0, and the Job is Complete`, async () => {
    await apply(kwokJob('ok', { result: 'succeed', duration: '2s' }), { namespace: ns.name });
    const job = await waitForJobDone(ns.name, 'ok');
    expect(job.outcome.type).toBe('Complete');
    expect(job.status.succeeded).toBe(1);
    expect(job.status.failed ?? 0).toBe(0);
    const [pod] = await jobPods(ns.name, 'ok');
    expect(pod?.status.phase).toBe('Succeeded');
    const term = pod!.status.containerStatuses![0]!.state.terminated!;
    expect(term).toMatchObject({ exitCode: 0, reason: 'Completed' });
    // it ran for the 2 s its annotation asked for (RFC 3339 times: whole seconds)
    expect(Date.parse(term.finishedAt!) - Date.parse(term.startedAt!)).toBeGreaterThanOrEqual(1_000);
  });

  it(`a Job whose pod is labelled ${KWOK_RESULT_LABEL}=fail (restartPolicy Never, backoffLimit 0) is Failed: BackoffLimitExceeded`, async () => {
    await apply(kwokJob('bad', { result: 'fail', backoffLimit: 0 }), { namespace: ns.name });
    const job = await waitForJobDone(ns.name, 'bad');
    expect(job.outcome).toMatchObject({ type: 'Failed', reason: 'BackoffLimitExceeded' });
    expect(job.status.failed).toBe(1);
    expect(job.status.succeeded ?? 0).toBe(0);
    const pods = await jobPods(ns.name, 'bad');
    expect(pods).toHaveLength(1); // backoffLimit 0: no second pod
    expect(pods[0]!.status.phase).toBe('Failed');
    expect(pods[0]!.status.containerStatuses![0]!.state.terminated).toMatchObject({ exitCode: 1, reason: 'Error' });
  });

  it('backoffLimit 1 with a failing pod: the Job controller makes a second pod, then fails the Job', async () => {
    await apply(kwokJob('retry', { result: 'fail', backoffLimit: 1 }), { namespace: ns.name });
    const job = await waitForJobDone(ns.name, 'retry', 90_000); // the controller's back-off before the retry is ~10 s
    expect(job.outcome).toMatchObject({ type: 'Failed', reason: 'BackoffLimitExceeded' });
    expect(job.status.failed).toBe(2);
    const pods = await jobPods(ns.name, 'retry');
    expect(pods.map((p) => p.status.phase)).toEqual(['Failed', 'Failed']);
  });

  it('restartPolicy OnFailure: the failing container is restarted in place, as a kubelet would, and the restart fails the Job', async () => {
    await apply(kwokJob('crash', { result: 'fail', backoffLimit: 0, restartPolicy: 'OnFailure' }), { namespace: ns.name });
    const job = await waitForJobDone(ns.name, 'crash');
    expect(job.outcome).toMatchObject({ type: 'Failed', reason: 'BackoffLimitExceeded' });
  });

  it('a Job pod with no label succeeds, as before', async () => {
    await apply(kwokJob('plain', {}), { namespace: ns.name });
    const job = await waitForJobDone(ns.name, 'plain');
    expect(job.outcome.type).toBe('Complete');
  });

  it('the Job pod is Running and Ready until its duration is over', async () => {
    await apply(kwokJob('slow', { result: 'succeed', duration: '8s' }), { namespace: ns.name });
    const running = await waitFor(async () => (await jobPods(ns.name, 'slow')).find((p) => p.status.phase === 'Running' && ready(p)), {
      message: 'the slow Job pod Running and Ready',
    });
    expect(running.status.containerStatuses![0]!.state.running).toBeDefined();
    const active = await kubectlJson<{ status: { active?: number } }>(['-n', ns.name, 'get', 'job', 'slow']);
    expect(active.status.active).toBe(1);
    const job = await waitForJobDone(ns.name, 'slow');
    expect(job.outcome.type).toBe('Complete');
  });
});

describe('kwok stages for Deployment pods', () => {
  it('a Deployment with no label: its pods become Ready and keep running', async () => {
    await apply(deployment('web', 3), { namespace: ns.name });
    await kubectlOk(['-n', ns.name, 'rollout', 'status', 'deployment/web', '--timeout=60s'], { timeoutMs: 70_000 });
    await new Promise((r) => setTimeout(r, 3_000)); // longer than any stage delay: nothing else happens to them
    const pods = (await kubectlJson<{ items: Pod[] }>(['-n', ns.name, 'get', 'pods', '-l', 'app=web'])).items;
    expect(pods).toHaveLength(3);
    for (const p of pods) {
      expect(p.status.phase).toBe('Running');
      expect(ready(p)).toBe(true);
      expect(p.status.containerStatuses![0]).toMatchObject({ ready: true, restartCount: 0 });
      expect(p.status.containerStatuses![0]!.state.running).toBeDefined();
    }
  });

  it(`a Deployment pod labelled ${KWOK_RESULT_LABEL}=fail crash-loops (restartPolicy Always): restarted in place after exit 1, never Failed`, async () => {
    await apply(deployment('crashy', 1, kwokPodMetadata({ result: 'fail', duration: '1s' })), { namespace: ns.name });
    const pod = await waitFor(
      async () =>
        (await kubectlJson<{ items: Pod[] }>(['-n', ns.name, 'get', 'pods', '-l', 'app=crashy'])).items.find(
          (p) => (p.status.containerStatuses?.[0]?.restartCount ?? 0) >= 2,
        ),
      { timeoutMs: 30_000, message: 'the crashy pod restarted twice' },
    );
    expect(pod.status.phase).toBe('Running');
    expect(pod.status.containerStatuses![0]!.lastState?.terminated?.exitCode).toBe(1);
  });
});
