// How Argo CD and Flux send their requests, for the GitOps e2e tests (issue 12).
//
// Argo CD (auto-sync with client-side apply, its default): argoSync() takes a folder
// of manifests the way the application controller takes a "directory" source, adds its
// tracking annotation, orders the objects as gitops-engine orders sync tasks, and
// applies them one `kubectl apply` per object with Argo's field manager, as Argo's
// ServiceAccount. Flux: fluxApply() / fluxDiff() run test/gitops/flux-apply (the
// fluxcd/pkg/ssa library kustomize-controller and `flux diff` run, with their options).
// Where each detail comes from upstream: test/gitops/README.md.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { ensureGitopsTools } from '../../gitops/tools.ts';
import { apply, clusterEnv, kubectl, type RunResult } from './cluster.ts';
import { runProcess } from './plugin-cli.ts';

// ---------------------------------------------------------------------------
// Identities and names (argo-cd common/common.go; fluxcd kustomize-controller main.go)

export const ARGO_NAMESPACE = 'argocd';
export const ARGO_SERVICE_ACCOUNT = 'argocd-application-controller';
export const ARGO_USER = `system:serviceaccount:${ARGO_NAMESPACE}:${ARGO_SERVICE_ACCOUNT}`;
/** common.ArgoCDSSAManager: the manager Argo passes to kubectl apply, client-side and server-side alike. */
export const ARGO_FIELD_MANAGER = 'argocd-controller';
/** common.AnnotationKeyAppInstance (annotation tracking, Argo CD's default since 3.0). */
export const ARGO_TRACKING_ANNOTATION = 'argocd.argoproj.io/tracking-id';
export const ARGO_SYNC_WAVE_ANNOTATION = 'argocd.argoproj.io/sync-wave';

export const FLUX_NAMESPACE = 'flux-system';
export const FLUX_SERVICE_ACCOUNT = 'kustomize-controller';
export const FLUX_USER = `system:serviceaccount:${FLUX_NAMESPACE}:${FLUX_SERVICE_ACCOUNT}`;
export const FLUX_FIELD_MANAGER = 'kustomize-controller';
/** ssa.Owner.Group of kustomize-controller: the prefix of its owner labels. */
export const FLUX_GROUP = 'kustomize.toolkit.fluxcd.io';

/** The labels kustomize-controller puts on every object of Kustomization namespace/name. */
export function fluxOwnerLabels(name: string, namespace: string = FLUX_NAMESPACE): Record<string, string> {
  return { [`${FLUX_GROUP}/name`]: name, [`${FLUX_GROUP}/namespace`]: namespace };
}

/**
 * The controllers' namespaces and ServiceAccounts, each bound to cluster-admin as their
 * installs bind them (Argo CD: ClusterRoleBinding argocd-application-controller to a
 * ClusterRole of * on *; Flux: cluster-reconciler-flux-system to cluster-admin).
 * Idempotent; shared by every test file, never deleted.
 */
export async function ensureAppliersRbac(): Promise<void> {
  const labels = { 'kube-bluegreen.test/e2e': 'true' };
  const objs = [
    [ARGO_NAMESPACE, ARGO_SERVICE_ACCOUNT, 'argocd-application-controller'],
    [FLUX_NAMESPACE, FLUX_SERVICE_ACCOUNT, 'cluster-reconciler-flux-system'],
  ].flatMap(([ns, sa, binding]) => [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: ns, labels } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: binding, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
    },
  ]);
  await apply(objs);
}

// ---------------------------------------------------------------------------
// Reading a folder

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
}

/**
 * The objects of a folder as Argo CD's directory source reads it: the *.yaml, *.yml and
 * *.json files directly in it (directory.recurse is off by default), in name order,
 * every document, a List's items flattened.
 */
export function readManifests(dir: string): Manifest[] {
  const files = readdirSync(dir, { withFileTypes: true })
    .filter((f) => f.isFile() && ['.yaml', '.yml', '.json'].includes(extname(f.name)))
    .map((f) => f.name)
    .sort();
  const out: Manifest[] = [];
  for (const f of files) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) {
      if (doc.errors.length) throw new Error(`${join(dir, f)}: ${doc.errors[0]!.message}`);
      const o = doc.toJSON() as Manifest | null;
      if (!o) continue;
      if (typeof o.kind === 'string' && o.kind.endsWith('List') && Array.isArray(o.items)) out.push(...(o.items as Manifest[]));
      else out.push(o);
    }
  }
  for (const o of out) {
    if (!o.apiVersion || !o.kind || !o.metadata?.name) throw new Error(`${dir}: an object without apiVersion, kind or metadata.name`);
  }
  return out;
}

const groupOf = (apiVersion: string) => (apiVersion.includes('/') ? apiVersion.split('/')[0]! : '');

let clusterScopedKinds: Promise<Set<string>> | undefined;
/** "group/Kind" of every cluster-scoped resource the apiserver serves (asked once per process). */
function clusterScoped(): Promise<Set<string>> {
  clusterScopedKinds ??= (async () => {
    const r = await kubectl(['api-resources', '--namespaced=false', '--no-headers']);
    if (r.code !== 0) throw new Error(`kubectl api-resources: ${r.stderr.trim()}`);
    const set = new Set<string>();
    for (const line of r.stdout.split('\n')) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 4) continue;
      set.add(`${groupOf(cols[cols.length - 3]!)}/${cols[cols.length - 1]!}`);
    }
    return set;
  })().catch((e: unknown) => {
    clusterScopedKinds = undefined;
    throw e;
  });
  return clusterScopedKinds;
}

// ---------------------------------------------------------------------------
// Argo CD

export interface ArgoOptions {
  /** A folder of manifests (Argo's directory source). */
  dir: string;
  /** spec.destination.namespace: set on namespaced objects that have none; part of the tracking id. */
  namespace: string;
  /** The Application's name (the first part of the tracking id). */
  app: string;
  /** Whom the requests are made as (default the application controller's ServiceAccount). */
  as?: string;
  /** Default ARGO_FIELD_MANAGER. */
  fieldManager?: string;
}

export interface ArgoSyncOptions extends ArgoOptions {
  /**
   * Apply a wave's objects all at once, as gitops-engine's runTasks does (one goroutine
   * per task), instead of one after the other in sync order (the default: deterministic,
   * and one of the orders Argo may produce).
   */
  parallel?: boolean;
}

/** The objects as the application controller would sync them: namespace defaulted, tracking annotation set, in sync order. */
export async function argoDesired(opts: ArgoOptions): Promise<Manifest[]> {
  const scoped = await clusterScoped();
  const objs = readManifests(opts.dir).map((o) => structuredClone(o));
  for (const o of objs) {
    const group = groupOf(o.apiVersion);
    // controller/state.go NormalizeTargetObjects: clear a cluster-scoped object's namespace, default a namespaced one's.
    if (scoped.has(`${group}/${o.kind}`)) delete o.metadata.namespace;
    else o.metadata.namespace ||= opts.namespace;
    // reposerver SetAppInstance: every object but CRDs; util/argo/resource_tracking.go BuildAppInstanceValue.
    if (!(group === 'apiextensions.k8s.io' && o.kind === 'CustomResourceDefinition')) {
      o.metadata.annotations = { ...o.metadata.annotations, [ARGO_TRACKING_ANNOTATION]: argoTrackingId(opts.app, o, opts.namespace) };
    }
  }
  return sortSyncTasks(objs);
}

/** `<app>:<group>/<Kind>:<namespace>/<name>`; the namespace defaults to the destination namespace. */
export function argoTrackingId(app: string, o: Manifest, destinationNamespace: string): string {
  return `${app}:${groupOf(o.apiVersion)}/${o.kind}:${o.metadata.namespace || destinationNamespace}/${o.metadata.name}`;
}

/** gitops-engine pkg/sync/sync_tasks.go kindOrder (Helm's install order); a kind not listed comes last. */
export const ARGO_KIND_ORDER: readonly string[] = [
  'Namespace',
  'NetworkPolicy',
  'ResourceQuota',
  'LimitRange',
  'PodSecurityPolicy',
  'PodDisruptionBudget',
  'ServiceAccount',
  'Secret',
  'SecretList',
  'ConfigMap',
  'StorageClass',
  'PersistentVolume',
  'PersistentVolumeClaim',
  'CustomResourceDefinition',
  'ClusterRole',
  'ClusterRoleList',
  'ClusterRoleBinding',
  'ClusterRoleBindingList',
  'Role',
  'RoleList',
  'RoleBinding',
  'RoleBindingList',
  'Service',
  'DaemonSet',
  'Pod',
  'ReplicationController',
  'ReplicaSet',
  'Deployment',
  'HorizontalPodAutoscaler',
  'StatefulSet',
  'Job',
  'CronJob',
  'IngressClass',
  'Ingress',
  'APIService',
];

const waveOf = (o: Manifest) => Number.parseInt(o.metadata.annotations?.[ARGO_SYNC_WAVE_ANNOTATION] ?? '0', 10) || 0;

/** syncTasks.Less (sync phase only): wave, then kind order, then name. */
export function sortSyncTasks<T extends Manifest>(objs: readonly T[]): T[] {
  const rank = (k: string) => {
    const i = ARGO_KIND_ORDER.indexOf(k);
    return i < 0 ? 0 : i - ARGO_KIND_ORDER.length;
  };
  return [...objs].sort(
    (a, b) => waveOf(a) - waveOf(b) || rank(a.kind) - rank(b.kind) || (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0),
  );
}

export interface ArgoObjectResult {
  kind: string;
  group: string;
  namespace: string;
  name: string;
  wave: number;
  trackingId: string | undefined;
  /** Applied: kubectl exited 0. */
  ok: boolean;
  /** Not attempted: the client-side dry run failed, or an earlier wave had a failure. */
  skipped: boolean;
  /** kubectl's output: "deployment.apps/web configured" / "unchanged", or the apiserver's refusal. */
  message: string;
}

export interface ArgoSyncResult {
  /** The operation's phase: Succeeded when every object applied. */
  phase: 'Succeeded' | 'Failed';
  /** Per object, in sync order. The failed ones are what the next round (Argo's retry) applies again. */
  results: ArgoObjectResult[];
}

function argoArgs(opts: ArgoOptions): string[] {
  return [`--as=${opts.as ?? ARGO_USER}`];
}

/**
 * One round of Argo CD's auto-sync with client-side apply (gitops-engine sync_context.go):
 * a client-side dry run of every object first (a failure fails the round and applies
 * nothing), then wave by wave, each object with its own `kubectl apply
 * --field-manager=argocd-controller` as the controller's ServiceAccount (RBAC objects
 * through `kubectl auth reconcile` first, as resource_ops.go does). Every object of a
 * wave is tried whatever the others do; a wave with a failure ends the round, the later
 * waves skipped. Call it again for the next round.
 */
export async function argoSync(opts: ArgoSyncOptions): Promise<ArgoSyncResult> {
  const objs = await argoDesired(opts);
  const fm = `--field-manager=${opts.fieldManager ?? ARGO_FIELD_MANAGER}`;
  const base = (o: Manifest): Omit<ArgoObjectResult, 'ok' | 'skipped' | 'message'> => ({
    kind: o.kind,
    group: groupOf(o.apiVersion),
    namespace: o.metadata.namespace ?? '',
    name: o.metadata.name,
    wave: waveOf(o),
    trackingId: o.metadata.annotations?.[ARGO_TRACKING_ANNOTATION],
  });
  const dry = await kubectl(['apply', '--dry-run=client', fm, ...argoArgs(opts), '-f', '-'], {
    input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objs }),
  });
  if (dry.code !== 0) {
    const message = `one or more objects failed to apply (dry run): ${(dry.stderr || dry.stdout).trim()}`;
    return { phase: 'Failed', results: objs.map((o) => ({ ...base(o), ok: false, skipped: true, message })) };
  }
  const applyOne = async (o: Manifest): Promise<ArgoObjectResult> => {
    const input = JSON.stringify(o);
    let r: RunResult | undefined;
    if (o.apiVersion === 'rbac.authorization.k8s.io/v1') {
      r = await kubectl(['auth', 'reconcile', ...argoArgs(opts), '-f', '-'], { input });
    }
    if (!r || r.code === 0) r = await kubectl(['apply', fm, ...argoArgs(opts), '-f', '-'], { input });
    return { ...base(o), ok: r.code === 0, skipped: false, message: (r.code === 0 ? r.stdout : r.stderr || r.stdout).trim() };
  };
  const results: ArgoObjectResult[] = [];
  const waves = [...new Set(objs.map(waveOf))];
  let failed = false;
  for (const wave of waves) {
    const inWave = objs.filter((o) => waveOf(o) === wave);
    if (failed) {
      results.push(...inWave.map((o) => ({ ...base(o), ok: false, skipped: true, message: 'not applied: an earlier wave failed' })));
      continue;
    }
    const done = opts.parallel ? await Promise.all(inWave.map(applyOne)) : await sequential(inWave, applyOne);
    results.push(...done);
    failed = done.some((r) => !r.ok);
  }
  return { phase: failed ? 'Failed' : 'Succeeded', results };
}

async function sequential<T, R>(items: readonly T[], fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (const t of items) out.push(await fn(t));
  return out;
}

export interface DiffResult extends RunResult {
  /** Exit 1: something would change. */
  drift: boolean;
}

const diffResult = (r: RunResult): DiffResult => ({ ...r, drift: r.code === 1 });

/**
 * Argo CD's server-side diff, approximated with kubectl: the desired objects (tracking
 * annotation, namespace) through `kubectl diff --server-side --force-conflicts
 * --field-manager=argocd-controller` as the controller's ServiceAccount. Exit 0 clean,
 * 1 drift, >1 an error (e.g. the dry run refused).
 */
export async function argoDiffServerSide(opts: ArgoOptions): Promise<DiffResult> {
  const objs = await argoDesired(opts);
  return diffResult(
    await kubectl(['diff', '--server-side', '--force-conflicts', `--field-manager=${opts.fieldManager ?? ARGO_FIELD_MANAGER}`, ...argoArgs(opts), '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objs }),
    }),
  );
}

// ---------------------------------------------------------------------------
// Flux

export interface FluxOptions {
  /** A folder of plain manifests (what kustomize-controller applies when it has no kustomization.yaml). */
  dir: string;
  /** The Kustomization's name (the owner label). */
  name: string;
  /** The Kustomization's namespace (the owner label; default flux-system). */
  namespace?: string;
  /** spec.targetNamespace: set on every namespaced object. */
  targetNamespace?: string;
  /** Whom the requests are made as (default kustomize-controller's ServiceAccount); '' for the kubeconfig's own user. */
  as?: string;
  asGroups?: string[];
  /** spec.force: recreate objects whose immutable fields changed. */
  force?: boolean;
  timeoutMs?: number;
}

export interface FluxChange {
  /** Kind/namespace/name (Kind/name when cluster-scoped). */
  subject: string;
  action: 'created' | 'configured' | 'unchanged' | 'deleted' | 'skipped' | 'unknown';
}

export interface FluxApplyResult extends RunResult {
  /** The change set, one entry per object (up to where a failure stopped it). */
  changes: FluxChange[];
}

export interface FluxDiffResult extends DiffResult {
  /** Subjects flux diff reports (► Kind/ns/name drifted|created|skipped). */
  drifted: string[];
  created: string[];
  skipped: string[];
}

/** The flux-apply binary (built by the e2e global setup; a cache hit here). */
export async function fluxApplyBin(): Promise<string> {
  return (await ensureGitopsTools()).fluxApply;
}

async function runFlux(cmd: 'apply' | 'diff', opts: FluxOptions): Promise<RunResult> {
  const env = clusterEnv();
  const args = [cmd, '--kubeconfig', env.kubeconfig, '--name', opts.name, '--namespace', opts.namespace ?? FLUX_NAMESPACE];
  if (opts.targetNamespace) args.push('--target-namespace', opts.targetNamespace);
  if (opts.as !== undefined) args.push(`--as=${opts.as}`);
  for (const g of opts.asGroups ?? []) args.push(`--as-group=${g}`);
  if (opts.force) args.push('--force');
  args.push(opts.dir);
  const r = await runProcess(await fluxApplyBin(), args, { ...process.env, HOME: env.home, NO_PROXY: '127.0.0.1,localhost' }, opts.timeoutMs ?? 150_000);
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

/**
 * What kustomize-controller does with a revision: ssa ApplyAllStaged with its options
 * (field manager kustomize-controller, owner labels, dry-run drift detection, cleanup
 * of kubectl's managers and last-applied annotation). Exit 0, or 1 with the error on
 * stderr: a refused dry run refuses the whole stage, nothing of it is applied.
 */
export async function fluxApply(opts: FluxOptions): Promise<FluxApplyResult> {
  const r = await runFlux('apply', opts);
  const changes = r.stdout
    .split('\n')
    .map((l) => /^(\S+) (\w+)$/.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ subject: m[1]!, action: m[2] as FluxChange['action'] }));
  return { ...r, changes };
}

/** `flux diff kustomization`: ssa Diff per object. Exit 0 clean, 1 drift or to be created, 2 an error (e.g. a dry run refused). */
export async function fluxDiff(opts: FluxOptions): Promise<FluxDiffResult> {
  const r = await runFlux('diff', opts);
  const pick = (what: string) => [...r.stdout.matchAll(new RegExp(`^► (\\S+) ${what}$`, 'gm'))].map((m) => m[1]!);
  return { ...diffResult(r), drifted: pick('drifted'), created: pick('created'), skipped: pick('skipped') };
}

export interface KubectlDiffOptions {
  dir: string;
  fieldManager?: string;
  /** -n: the namespace of objects that name none. */
  namespace?: string;
  /**
   * Labels to add to every object first (e.g. fluxOwnerLabels(name)): without them the
   * folder lacks what kustomize-controller applied, and the diff shows their removal.
   */
  labels?: Record<string, string>;
  as?: string;
}

/**
 * `kubectl diff --server-side --force-conflicts --field-manager=kustomize-controller -f DIR`
 * (a person checking a Flux-managed folder by hand). Exit 0 clean, 1 drift, >1 an error.
 */
export async function kubectlDiffServerSide(opts: KubectlDiffOptions): Promise<DiffResult> {
  const args = ['diff', '--server-side', '--force-conflicts', `--field-manager=${opts.fieldManager ?? FLUX_FIELD_MANAGER}`];
  if (opts.namespace) args.push('-n', opts.namespace);
  if (opts.as) args.push(`--as=${opts.as}`);
  if (!opts.labels) return diffResult(await kubectl([...args, '-f', opts.dir]));
  const items = readManifests(opts.dir).map((o) => ({ ...o, metadata: { ...o.metadata, labels: { ...o.metadata.labels, ...opts.labels } } }));
  return diffResult(await kubectl([...args, '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }) }));
}

// ---------------------------------------------------------------------------

/** Writes manifests (text, or objects as YAML documents) into a new temporary folder, one file per entry. */
export function manifestDir(files: Record<string, string | object | readonly object[]>): {
  dir: string;
  write: (name: string, content: string | object | readonly object[]) => void;
  remove: () => void;
} {
  const dir = mkdtempSync(join(tmpdir(), 'kbg-gitops-'));
  const write = (name: string, content: string | object | readonly object[]) => {
    const text = typeof content === 'string' ? content : (Array.isArray(content) ? content : [content]).map((o) => stringify(o)).join('---\n');
    writeFileSync(join(dir, name), text);
  };
  for (const [name, content] of Object.entries(files)) write(name, content);
  return { dir, write, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
