// Records real AdmissionReviews from the local kube-apiserver, with the app's
// objects as they were just before each command, into test/fixtures/admission/.
// The unit tests feed them to the pure core. Rerun after changing the scenarios:
//   node scripts/capture-fixtures.ts        (brings the local cluster up if needed)
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { up } from '../local-cluster/control-plane.ts';
import { apply, kubectl, kubectlJson, waitFor } from '../test/e2e/helpers/cluster.ts';
import { startWebhook } from '../test/e2e/helpers/webhook.ts';
import { sampleApp } from '../test/fixtures/sample-app.ts';

const REPO = resolve(import.meta.dirname, '..');
const OUT = join(REPO, 'test/fixtures/admission');
const NS = 'fixtures';

interface Scenario {
  name: string;
  description: string;
  app: string;
  before?: string[][];
  command: string[];
}

const unschedulable = JSON.stringify([{ op: 'add', path: '/spec/template/spec/nodeSelector', value: { 'bluegreen.io/fixture': 'no-such-node' } }]);
const scenarios: Scenario[] = [
  {
    name: 'set-image-live',
    description: 'kubectl set image on the live colour',
    app: 'shop',
    command: ['set', 'image', 'deployment/shop-blue', 'app=registry.example/shop:v2'],
  },
  {
    name: 'set-image-live-dry-run',
    description: 'the same with --dry-run=server',
    app: 'shop',
    command: ['set', 'image', 'deployment/shop-blue', 'app=registry.example/shop:v3', '--dry-run=server'],
  },
  {
    name: 'set-image-idle',
    description: 'kubectl set image on the idle colour',
    app: 'shop',
    command: ['set', 'image', 'deployment/shop-green', 'app=registry.example/shop:v4'],
  },
  {
    name: 'set-env-live',
    description: 'kubectl set env on the live colour (not an image change)',
    app: 'shop',
    command: ['set', 'env', 'deployment/shop-blue', 'GREETING=hi'],
  },
  {
    name: 'patch-replicas-live',
    description: 'a replicas-only patch of the live colour',
    app: 'shop',
    command: ['patch', 'deployment/shop-blue', '-p', '{"spec":{"replicas":3}}'],
  },
  {
    name: 'rollout-restart-live',
    description: 'kubectl rollout restart on the live colour',
    app: 'shop',
    command: ['rollout', 'restart', 'deployment/shop-blue'],
  },
  { name: 'scale-live-5', description: 'kubectl scale the live colour to 5', app: 'shop', command: ['scale', 'deployment/shop-blue', '--replicas=5'] },
  { name: 'scale-live-0', description: 'kubectl scale the live colour to 0', app: 'shop', command: ['scale', 'deployment/shop-blue', '--replicas=0'] },
  {
    name: 'patch-replicas-live-0',
    description: 'a patch setting the live colour to 0 replicas',
    app: 'shop',
    command: ['patch', 'deployment/shop-blue', '-p', '{"spec":{"replicas":0}}'],
  },
  { name: 'delete-live', description: 'kubectl delete of the live colour', app: 'shop', command: ['delete', 'deployment/shop-blue', '--wait=false'] },
  {
    name: 'patch-template-slot',
    description: "a patch of the idle colour's template slot label",
    app: 'shop',
    command: ['patch', 'deployment/shop-green', '--type=json', '-p', '[{"op":"replace","path":"/spec/template/metadata/labels/slot","value":"blue"}]'],
  },
  {
    name: 'service-drop-slot',
    description: 'a Service patch that drops the slot key',
    app: 'shop',
    command: ['patch', 'service/shop', '--type=json', '-p', '[{"op":"remove","path":"/spec/selector/slot"}]'],
  },
  {
    name: 'service-purple',
    description: 'a Service patch naming slot=purple',
    app: 'shop',
    command: ['patch', 'service/shop', '-p', '{"spec":{"selector":{"slot":"purple"}}}'],
  },
  {
    name: 'service-green-scaled-down',
    description: 'a Service patch to green while green runs fewer replicas than blue',
    app: 'shop',
    command: ['patch', 'service/shop', '-p', '{"spec":{"selector":{"slot":"green"}}}'],
  },
  {
    name: 'service-green-not-ready',
    description: 'a Service patch to green while green cannot schedule its pods',
    app: 'shop',
    before: [
      ['scale', 'deployment/shop-green', '--replicas=5'],
      ['patch', 'deployment/shop-green', '--type=json', '-p', unschedulable],
    ],
    command: ['patch', 'service/shop', '-p', '{"spec":{"selector":{"slot":"green"}}}'],
  },
  {
    name: 'service-green-ready',
    description: 'a Service patch to green once green is fully available',
    app: 'shop',
    before: [
      ['patch', 'deployment/shop-green', '--type=json', '-p', '[{"op":"remove","path":"/spec/template/spec/nodeSelector"}]'],
      ['rollout', 'status', 'deployment/shop-green', '--timeout=60s'],
    ],
    command: ['patch', 'service/shop', '-p', '{"spec":{"selector":{"slot":"green"}}}'],
  },
  {
    name: 'env-key-set-image-live',
    description: 'set image on the live colour of an app whose slot label is `environment`',
    app: 'web',
    command: ['set', 'image', 'deployment/web-blue', 'app=registry.example/web:v2'],
  },
];

async function main() {
  await up({ log: (m) => process.stderr.write(`[cluster] ${m}\n`) });
  await kubectl(['delete', 'namespace', NS, '--ignore-not-found', '--wait=true']);
  await kubectl(['create', 'namespace', NS]);
  await waitFor(async () => (await kubectl(['-n', NS, 'get', 'sa', 'default'])).code === 0);
  await apply(sampleApp({ namespace: NS }));
  await apply(sampleApp({ namespace: NS, app: 'web', slotKey: 'environment', extraSelector: { tier: 'frontend' }, image: 'registry.example/web:v1' }));
  for (const d of ['shop-blue', 'shop-green', 'web-blue', 'web-green']) await kubectl(['-n', NS, 'rollout', 'status', `deployment/${d}`, '--timeout=60s']);

  const dir = join(tmpdir(), `kbg-capture-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  // A fixed record key, so the unit tests can open the records the captured reviews carry.
  const webhook = await startWebhook({ extraArgs: ['--capture-dir', dir, '--record-key-file', join(REPO, 'test/fixtures/record-key')], namespace: NS });
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  try {
    for (const s of scenarios) {
      for (const b of s.before ?? []) await kubectl(['-n', NS, ...b]);
      await new Promise((r) => setTimeout(r, 500));
      const sel = `bluegreen.io/app=${s.app}`;
      const deployments = (await kubectlJson<{ items: unknown[] }>(['-n', NS, 'get', 'deployments', '-l', sel])).items;
      const services = (await kubectlJson<{ items: unknown[] }>(['-n', NS, 'get', 'services', '-l', sel])).items;
      for (const f of readdirSync(dir)) rmSync(join(dir, f));
      const res = await kubectl(['-n', NS, ...s.command]);
      // The reconciler's follow-ups (the idle colour's update, the record removed) come within this.
      await new Promise((r) => setTimeout(r, 1500));
      const captured = readdirSync(dir).sort();
      let i = 0;
      for (const f of captured) {
        const review = JSON.parse(readFileSync(join(dir, f), 'utf8'));
        const endpoint = f.split('-')[1];
        // Only this namespace: other tests may share the cluster and call this webhook too.
        if (review.request?.namespace !== NS) continue;
        const file = `${s.name}.${++i}.${endpoint}.json`;
        writeFileSync(
          join(OUT, file),
          JSON.stringify(
            {
              scenario: s.name,
              description: s.description,
              command: `kubectl ${s.command.join(' ')}`,
              kubectl: { exitCode: res.code, stderr: res.stderr.trim() },
              cluster: { deployments, services },
              review,
            },
            null,
            1,
          ) + '\n',
        );
      }
      process.stderr.write(`${s.name}: ${captured.length} review(s), kubectl exit ${res.code}\n`);
    }
  } finally {
    await webhook.stop();
    rmSync(dir, { recursive: true, force: true });
    await kubectl(['delete', 'namespace', NS, '--wait=false']);
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
