// The key that seals pending-change records, shared by every replica through a
// Secret in the webhook's namespace: read it, or create it (the first replica
// to start wins; the others read what it wrote). Or from a mounted file.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AGAIN, retryOnConflict } from '../kube/retry.ts';
import type { WebhookCluster } from './cluster.ts';

const KEY_FIELD = 'key';
const KEY_BYTES = 32;

export async function loadRecordKey(cluster: WebhookCluster, namespace: string, name: string): Promise<Buffer> {
  return retryOnConflict(
    async () => {
      const found = await cluster.getSecret(namespace, name);
      const data = found?.data?.[KEY_FIELD];
      if (found) {
        const key = data ? Buffer.from(data, 'base64') : Buffer.alloc(0);
        if (key.length < 16) throw new Error(`Secret ${namespace}/${name} has no usable "${KEY_FIELD}" (at least 16 bytes, base64)`);
        return key;
      }
      // Created (or created by another replica meanwhile, 409): read what is stored.
      await cluster.createSecret(namespace, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name, namespace },
        type: 'Opaque',
        data: { [KEY_FIELD]: randomBytes(KEY_BYTES).toString('base64') },
      });
      return AGAIN;
    },
    {
      exhausted: () => {
        throw new Error(`could not read or create Secret ${namespace}/${name}`);
      },
    },
  );
}

export function readRecordKeyFile(path: string): Buffer {
  const key = readFileSync(path);
  if (key.length < 16) throw new Error(`${path}: a record key needs at least 16 bytes`);
  return key;
}
