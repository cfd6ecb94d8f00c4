// Release gates (issue 14, README "Release gates") on the local control plane, with the real Job
// controller: the webhook's reconciler makes each check's Job from the CronJob the app names, kwok
// runs its pod to the end the template asks for (label bluegreen.io/kwok-result), and the Job
// controller decides the Job's fate, which the reconciler records on the Deployment it checked.
//  1. a failing pre-switch check blocks `kubectl bg switch` and a raw `kubectl patch service`;
//  2. a passing one (after `kubectl bg check --rerun`) lets both through;
//  3. a new version needs a new pass (`kubectl bg switch --wait` waits for it);
//  4. `--force` overrides a failed check, and the history says forced;
//  5. a failing post-switch check rolls back at once, the reason in the history, and stays put.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleApp } from '../fixtures/sample-app.ts';
import { applyApps } from './helpers/apps.ts';
import { apply, createNamespace, kubectl, kubectlJson, kubectlOk, type TestNamespace, waitFor } from './helpers/cluster.ts';
import { type Job, jobOutcome, kwokJob, type KwokResult } from './helpers/kwok.ts';
import { kubectlBg } from './helpers/plugin-cli.ts';
import { type RunningWebhook, startWebhook } from './helpers/webhook.ts';

let ns: TestNamespace;
let wh: RunningWebhook | undefined;

const bg = (...args: string[]) => kubectlBg(ns.name, args, 180_000);
const get = (kind: string, name: string) => kubectlJson(['-n', ns.name, 'get', kind, name]);
const selector = async () => (await get('service', 'shop')).spec.selector.slot as string;
const image = async (d: string) => (await get('deployment', d)).spec.template.spec.containers[0].image as string;
const historyOf = async () => JSON.parse((await bg('history', 'shop', '-o', 'json')).stdout).items as Record<string, unknown>[];
const status = async () => JSON.parse((await bg('status', 'shop', '-o', 'json')).stdout);
const rawSwitch = (to: string, ...extra: string[]) =>
  kubectl(['-n', ns.name, 'patch', 'service', 'shop', '--type=merge', '-p', JSON.stringify({ spec: { selector: { slot: to } } }), ...extra]);

/** A check template: a suspended CronJob whose Job's pod kwok ends as asked. */
function cronJob(name: string, result: KwokResult, duration?: string) {
  const job = kwokJob(name, { result, ...(duration ? { duration } : {}) }) as { spec: object };
  return { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name }, spec: { schedule: '0 0 1 1 *', suspend: true, jobTemplate: { spec: job.spec } } };
}

/** `kubectl set image` on the live colour: redirected; waits until the idle colour runs it, rolled out. */
async function release(live: string, idle: string, tag: string): Promise<void> {
  const before = await image(`shop-${live}`);
  await kubectlOk(['-n', ns.name, 'set', 'image', `deployment/shop-${live}`, `app=registry.example/shop:${tag}`]);
  await waitFor(async () => (await image(`shop-${idle}`)) === `registry.example/shop:${tag}`, { timeoutMs: 30_000, message: `${idle} runs ${tag}` });
  await kubectlOk(['-n', ns.name, 'rollout', 'status', `deployment/shop-${idle}`, '--timeout=60s'], { timeoutMs: 70_000 });
  expect(await image(`shop-${live}`)).toBe(before);
}

const checkJobs = async (phase: 'pre' | 'post') =>
  (await kubectlJson(['-n', ns.name, 'get', 'jobs', '-l', `bluegreen.io/check=${phase}`])).items as (Job & {
    metadata: { name: string; labels: Record<string, string> };
    spec: any;
  })[];

beforeAll(async () => {
  ns = await createNamespace('gates');
  await applyApps(ns.name, sampleApp({ namespace: ns.name, replicas: 1, preview: true }));
  await apply([cronJob('shop-smoke', 'fail')], { namespace: ns.name });
  await kubectlOk(['-n', ns.name, 'annotate', 'service', 'shop', 'bluegreen.io/pre-switch-check=shop-smoke']);
  wh = await startWebhook({ namespace: ns.name });
}, 180_000);

afterAll(async () => {
  await wh?.stop();
  await ns?.cleanup();
});

describe('release gates with the real Job controller', () => {
  it('a failing pre-switch check blocks kubectl bg switch and a raw selector patch, with the reason', async () => {
    await release('blue', 'green', 'v2');
    const check = await bg('check', 'shop', '--wait', '--timeout', '90s');
    expect(check.code).toBe(2);
    expect(check.stdout).toMatch(/^Pre-switch check: green version [0-9a-f]{8} \(CronJob shop-smoke\): failed \(/m);
    expect(check.stderr).toContain('error: the pre-switch check of shop-green');

    // The Job: made from the template by the reconciler, run by kwok, failed by the Job controller.
    const [job, ...more] = await checkJobs('pre');
    expect(more).toEqual([]);
    expect(job!.metadata.labels).toMatchObject({ 'bluegreen.io/app': 'shop', 'bluegreen.io/check-colour': 'green' });
    expect(jobOutcome(job!)?.type).toBe('Failed');
    expect(job!.spec.template.spec.containers[0].env).toContainEqual({ name: 'BLUEGREEN_URL', value: `http://shop-preview.${ns.name}.svc` });

    const sw = await bg('switch', 'shop');
    expect(sw.code).toBe(2);
    expect(sw.stderr).toContain('has not passed its pre-switch check (CronJob shop-smoke)');
    expect(sw.stderr).toContain(`Job ${job!.metadata.name} failed`);
    const raw = await rawSwitch('green');
    expect(raw.code).not.toBe(0);
    expect(raw.stderr).toContain('has not passed its pre-switch check (CronJob shop-smoke)');
    expect(await selector()).toBe('blue');
    expect((await status()).phase).toBe('check-failed');
  });

  it('a passing check (kubectl bg check --rerun) lets the raw patch and kubectl bg switch through', async () => {
    await apply([cronJob('shop-smoke', 'succeed')], { namespace: ns.name });
    const check = await bg('check', 'shop', '--rerun', '--wait', '--timeout', '90s');
    expect(check.stderr).toContain('removed bluegreen.io/pre-switch-check-result from shop-green');
    expect(check.code).toBe(0);
    expect(check.stdout).toMatch(/\(CronJob shop-smoke\): passed, Job /);
    expect((await checkJobs('pre')).length).toBe(2);
    expect((await status()).phase).toBe('ready-to-switch');
    const dry = await rawSwitch('green', '--dry-run=server');
    expect([dry.code, dry.stderr]).toEqual([0, '']);
    const sw = await bg('switch', 'shop');
    expect(sw.code).toBe(0);
    expect(await selector()).toBe('green');
  });

  it('a new version needs a new pass: refused while its check runs, kubectl bg switch --wait waits for it', async () => {
    await apply([cronJob('shop-smoke', 'succeed', '15s')], { namespace: ns.name });
    await release('green', 'blue', 'v3');
    const early = await bg('switch', 'shop');
    expect(early.code).toBe(2);
    expect(early.stderr).toMatch(/version [0-9a-f]{12} of shop-blue has not passed its pre-switch check/);
    expect((await status()).phase).toBe('checking');
    const sw = await bg('switch', 'shop', '--wait', '--timeout', '120s');
    expect(sw.stderr).not.toContain('error');
    expect(sw.code).toBe(0);
    expect(await selector()).toBe('blue');
    expect((await historyOf()).at(-1)).toMatchObject({ kind: 'switch', from: 'green', to: 'blue', images: ['app=registry.example/shop:v3'] });
  });

  it('--force overrides a failed check, and the history says forced', async () => {
    await apply([cronJob('shop-smoke', 'fail')], { namespace: ns.name });
    await release('blue', 'green', 'v4');
    expect((await bg('check', 'shop', '--wait', '--timeout', '90s')).code).toBe(2);
    const sw = await bg('switch', 'shop', '--force');
    expect(sw.code).toBe(0);
    expect(sw.stderr).toContain('warning: forced: version');
    expect(await selector()).toBe('green');
    expect((await historyOf()).at(-1)).toMatchObject({ kind: 'switch', to: 'green', forced: true });
  });

  it('a failing post-switch check rolls back at once, with the reason in the history, and stays put', async () => {
    // The post-switch check, passing for the version live now (v4 on green); the pre-switch check passing.
    await apply([cronJob('shop-smoke', 'succeed'), cronJob('shop-verify', 'succeed')], { namespace: ns.name });
    await kubectlOk(['-n', ns.name, 'annotate', 'service', 'shop', 'bluegreen.io/post-switch-check=shop-verify']);
    await waitFor(async () => (await bg('check', 'shop')).stdout.match(/Post-switch check: green .*passed/), {
      timeoutMs: 60_000,
      message: "green's post-switch check passed",
    });
    // The next version fails its post-switch check.
    await apply([cronJob('shop-verify', 'fail')], { namespace: ns.name });
    await release('green', 'blue', 'v5');
    const sw = await bg('switch', 'shop', '--wait', '--timeout', '120s');
    expect(sw.code).toBe(0);
    await waitFor(async () => (await selector()) === 'green', { timeoutMs: 60_000, message: 'rolled back to green' });
    const last = (await historyOf()).at(-1);
    expect(last).toMatchObject({ kind: 'rollback', from: 'blue', to: 'green', by: 'kube-bluegreen' });
    expect(String(last?.reason)).toMatch(/^post-switch check failed: /);
    const text = await bg('history', 'shop');
    expect(text.stdout).toMatch(/rollback\s+blue\s+green .*kube-bluegreen .*post-switch check failed: /);
    const labels = async () => [
      (await get('deployment', 'shop-blue')).metadata.labels['bluegreen.io/live'],
      (await get('deployment', 'shop-green')).metadata.labels['bluegreen.io/live'],
    ];
    await waitFor(async () => (await labels()).join() === 'false,true', { timeoutMs: 10_000, message: 'live labels follow the Service' });
    // Stays put: no switch back and forth (the reconciler resyncs every 2 s here).
    const n = (await historyOf()).length;
    await new Promise((r) => setTimeout(r, 8_000));
    expect([await selector(), (await historyOf()).length]).toEqual(['green', n]);
    const st = await status();
    expect(st.checks).toMatchObject([{ phase: 'post', colour: 'green', state: 'passed' }]);
  });
});
