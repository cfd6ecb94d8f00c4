// Other webhook configurations that would see enrolled objects in a namespace:
// e.g. `npm start`'s cluster-wide `kube-bluegreen`, left running on the shared
// cluster. A test that needs "no webhook at all" in its namespace waits for them
// to go, and says which ones held it up.
import { kubectlJson, waitFor } from './cluster.ts';

interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

function matches(sel: Selector | undefined, labels: Record<string, string>): boolean {
  if (!sel) return true;
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = e.key in labels;
    const inValues = has && (e.values ?? []).includes(labels[e.key]!);
    if (e.operator === 'In' && !inValues) return false;
    if (e.operator === 'NotIn' && inValues) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

/** "kind/name: webhook" for every webhook of a configuration not named `own` whose namespaceSelector matches `namespace`. */
export async function foreignWebhooks(namespace: string, own: readonly string[]): Promise<string[]> {
  const ns = await kubectlJson<{ metadata: { labels?: Record<string, string> } }>(['get', 'namespace', namespace]);
  const labels = ns.metadata.labels ?? {};
  const out: string[] = [];
  for (const kind of ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations']) {
    const list = await kubectlJson<{ items: { metadata: { name: string }; webhooks?: { name: string; namespaceSelector?: Selector }[] }[] }>(['get', kind]);
    for (const c of list.items)
      if (!own.includes(c.metadata.name))
        for (const w of c.webhooks ?? []) if (matches(w.namespaceSelector, labels)) out.push(`${kind}/${c.metadata.name}: ${w.name}`);
  }
  return out;
}

export async function waitForNoForeignWebhooks(namespace: string, own: readonly string[], timeoutMs = 120_000): Promise<void> {
  let foreign: string[] = [];
  try {
    await waitFor(async () => (foreign = await foreignWebhooks(namespace, own)).length === 0, { timeoutMs, intervalMs: 1_000 });
  } catch {
    throw new Error(
      `other webhook configurations still intercept namespace ${namespace} after ${timeoutMs / 1000} s, so "no webhook" cannot be tested: ${foreign.join('; ')}`,
    );
  }
}
