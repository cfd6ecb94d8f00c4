// What the local control plane's kwok does with pods, for tests that need more than
// "Running and Ready": Job pods that succeed or fail (local-cluster/kwok/pod-stages.yaml),
// and emulated CPU/memory usage that metrics-server scrapes and the HPA controller reads
// (local-cluster/kwok/metrics.yaml).
import { KWOK_DURATION_ANNOTATION, KWOK_RESULT_LABEL, KWOK_USAGE_CPU_ANNOTATION, KWOK_USAGE_MEMORY_ANNOTATION } from '../../../local-cluster/control-plane.ts';
import { kubectl, kubectlJson, kubectlOk, waitFor } from './cluster.ts';

export { KWOK_DURATION_ANNOTATION, KWOK_RESULT_LABEL, KWOK_USAGE_CPU_ANNOTATION, KWOK_USAGE_MEMORY_ANNOTATION };

export type KwokResult = 'succeed' | 'fail';

export interface KwokPodBehaviour {
  /** How the pod's containers end: exit 0 or exit 1. Omitted on a Job's pod: it succeeds. */
  result?: KwokResult;
  /** How long the containers run first, a Go duration ("2s"). Omitted: they exit at once. */
  duration?: string;
  /** Emulated usage, quantities ("250m", "64Mi"). Omitted: 1m CPU, 1Mi memory. */
  cpu?: string;
  memory?: string;
}

/** The labels and annotations that make kwok play a pod as described; merge them into a pod template's metadata. */
export function kwokPodMetadata(b: KwokPodBehaviour): { labels: Record<string, string>; annotations: Record<string, string> } {
  const labels: Record<string, string> = {};
  const annotations: Record<string, string> = {};
  if (b.result) labels[KWOK_RESULT_LABEL] = b.result;
  if (b.duration) annotations[KWOK_DURATION_ANNOTATION] = b.duration;
  if (b.cpu) annotations[KWOK_USAGE_CPU_ANNOTATION] = b.cpu;
  if (b.memory) annotations[KWOK_USAGE_MEMORY_ANNOTATION] = b.memory;
  return { labels, annotations };
}

export interface KwokJobOptions extends KwokPodBehaviour {
  backoffLimit?: number;
  restartPolicy?: 'Never' | 'OnFailure';
  labels?: Record<string, string>;
  image?: string;
}

/** A batch/v1 Job whose one pod kwok runs to the given end (the real Job controller then decides the Job's fate). */
export function kwokJob(name: string, opts: KwokJobOptions = {}): object {
  const meta = kwokPodMetadata(opts);
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, labels: opts.labels ?? {} },
    spec: {
      backoffLimit: opts.backoffLimit ?? 0,
      template: {
        metadata: { labels: { ...opts.labels, ...meta.labels }, annotations: meta.annotations },
        spec: {
          restartPolicy: opts.restartPolicy ?? 'Never',
          containers: [{ name: 'check', image: opts.image ?? 'registry.example/check:v1', command: ['/check'] }],
        },
      },
    },
  };
}

export interface JobCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}
export interface Job {
  metadata: { name: string };
  status: {
    conditions?: JobCondition[];
    succeeded?: number;
    failed?: number;
    active?: number;
    startTime?: string;
    completionTime?: string;
  };
}

/** The Job's terminal condition (Complete or Failed) once the Job controller has set it. */
export function jobOutcome(job: Job): JobCondition | undefined {
  return job.status.conditions?.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
}

/** Waits until the Job is Complete or Failed and returns it (whichever came; the caller checks which). */
export async function waitForJobDone(namespace: string, name: string, timeoutMs = 60_000): Promise<Job & { outcome: JobCondition }> {
  return waitFor(
    async () => {
      const job = await kubectlJson<Job>(['-n', namespace, 'get', 'job', name]);
      const outcome = jobOutcome(job);
      return outcome ? { ...job, outcome } : undefined;
    },
    { timeoutMs, intervalMs: 250, message: `Job ${namespace}/${name} Complete or Failed` },
  );
}

/**
 * Sets the emulated usage of the running pods that match `selector` (annotations, no rollout);
 * metrics-server sees it within one resolution (10 s). Pods created later take the template's.
 */
export async function setPodUsage(namespace: string, selector: string, usage: { cpu?: string; memory?: string }): Promise<void> {
  const args = ['-n', namespace, 'annotate', 'pods', '-l', selector, '--overwrite'];
  if (usage.cpu) args.push(`${KWOK_USAGE_CPU_ANNOTATION}=${usage.cpu}`);
  if (usage.memory) args.push(`${KWOK_USAGE_MEMORY_ANNOTATION}=${usage.memory}`);
  await kubectlOk(args);
}

export interface PodMetrics {
  metadata: { name: string; namespace: string };
  timestamp: string;
  window: string;
  containers: { name: string; usage: { cpu: string; memory: string } }[];
}

/** metrics.k8s.io/v1beta1 PodMetrics of a namespace, as `kubectl top` and the HPA controller read them. */
export async function podMetrics(namespace: string, selector?: string): Promise<PodMetrics[]> {
  const q = selector ? `?labelSelector=${encodeURIComponent(selector)}` : '';
  const r = await kubectl(['get', '--raw', `/apis/metrics.k8s.io/v1beta1/namespaces/${namespace}/pods${q}`]);
  if (r.code !== 0) throw new Error(`metrics.k8s.io: ${r.stderr.trim()}`);
  return (JSON.parse(r.stdout) as { items: PodMetrics[] }).items;
}

/** Parses a CPU quantity as metrics-server prints it ("250m", "1", "12345n", "3u") into millicores. */
export function milliCpu(q: string): number {
  const m = /^([0-9.]+)([numk]?)$/.exec(q);
  if (!m) throw new Error(`not a CPU quantity: ${q}`);
  const n = Number(m[1]);
  return { n: n / 1e6, u: n / 1e3, m: n, k: n * 1e6, '': n * 1e3 }[m[2] as 'n' | 'u' | 'm' | 'k' | '']!;
}
