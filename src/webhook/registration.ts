// Writes the webhook configurations: all of them (a webhook outside the
// cluster, such as the local control plane's), or only the caBundle of
// existing ones (the chart's, in self-signed mode). Both are idempotent, so
// every replica can do it at start.
import { isStatus, type KubeClient, paths } from '../kube/client.ts';
import { retryOnConflict } from '../kube/retry.ts';
import { mutatingConfiguration, validatingConfiguration, type WebhookOptions } from './configurations.ts';
import type { Logger } from './logger.ts';

interface Config {
  metadata: { name: string; resourceVersion?: string };
  webhooks?: { clientConfig?: { caBundle?: string } }[];
}

async function upsert(client: KubeClient, path: (name?: string) => string, body: Config): Promise<void> {
  await retryOnConflict(
    async () => {
      try {
        const cur = await client.get<Config>(path(body.metadata.name));
        await client.request('PUT', path(body.metadata.name), {
          body: { ...body, metadata: { ...body.metadata, resourceVersion: cur.metadata.resourceVersion } },
        });
      } catch (e) {
        if (!isStatus(e, 404)) throw e;
        await client.create(path(), body); // 409: created meanwhile, read it again
      }
    },
    {
      exhausted: () => {
        throw new Error(`could not write ${body.metadata.name}: it kept changing`);
      },
    },
  );
}

export async function applyConfigurations(client: KubeClient, o: WebhookOptions, log: Logger): Promise<void> {
  await upsert(client, paths.mutatingWebhookConfigurations, mutatingConfiguration(o) as Config);
  await upsert(client, paths.validatingWebhookConfigurations, validatingConfiguration(o) as Config);
  log.info({ name: o.name, client: 'url' in o.client ? o.client.url : o.client.service }, 'webhook configurations written');
}

export async function deleteConfigurations(client: KubeClient, name: string): Promise<void> {
  for (const p of [paths.mutatingWebhookConfigurations, paths.validatingWebhookConfigurations]) {
    await client.delete(p(name)).catch((e) => {
      if (!isStatus(e, 404)) throw e;
    });
  }
}

/** Sets caBundle on every webhook of the named configurations, unless already set to it. */
export async function patchCaBundle(client: KubeClient, name: string, caPem: string, log: Logger): Promise<void> {
  const ca = Buffer.from(caPem).toString('base64');
  for (const path of [paths.mutatingWebhookConfigurations, paths.validatingWebhookConfigurations]) {
    await retryOnConflict(
      async () => {
        const cur = await client.get<Config>(path(name));
        const hooks = cur.webhooks ?? [];
        if (hooks.every((h) => h.clientConfig?.caBundle === ca)) return;
        const ops = [
          { op: 'test', path: '/metadata/resourceVersion', value: cur.metadata.resourceVersion },
          ...hooks.map((_, i) => ({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: ca })),
        ];
        await client.patch(path(name), ops, 'json');
        log.info({ configuration: name, webhooks: hooks.length }, 'caBundle written');
      },
      // 422: the resourceVersion test failed. Still changing after 5 reads: the keeper's next round (ca-bundle-keeper.ts) tries again.
      { isConflict: (e) => isStatus(e, 409, 422), exhausted: () => undefined },
    );
  }
}
