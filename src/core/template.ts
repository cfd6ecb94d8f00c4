// Pod template comparison. Two templates are "the same version" when they are
// equal once the slot label (which differs by colour by design) and the
// rollout-restart stamp are set aside.
import { createHash } from 'node:crypto';
import type { PodTemplateSpec } from './k8s-types.ts';
import { RESTARTED_AT_ANNOTATION } from './labels.ts';

/** JSON with object keys sorted, so equal values always serialise equally. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}

export interface NormalizeOptions {
  /** Also set aside `kubectl rollout restart`'s annotation. */
  ignoreRestart?: boolean;
}

function withoutKey<T extends Record<string, unknown>>(o: T | undefined, key: string): T | undefined {
  if (!o || !(key in o)) return o;
  const { [key]: _drop, ...rest } = o;
  return (Object.keys(rest).length ? rest : undefined) as T | undefined;
}

/** The template minus what is expected to differ between colours. Does not modify its input. */
export function normalizeTemplate(t: PodTemplateSpec | undefined, slotKey: string, opts: NormalizeOptions = {}): unknown {
  if (!t) return null;
  const md = t.metadata ?? {};
  const labels = withoutKey(md.labels, slotKey);
  let annotations = md.annotations;
  if (opts.ignoreRestart) annotations = withoutKey(annotations, RESTARTED_AT_ANNOTATION);
  const metadata = { ...md, labels, annotations };
  if (!labels) delete metadata.labels;
  if (!annotations) delete metadata.annotations;
  if (metadata.creationTimestamp === null) delete metadata.creationTimestamp;
  return { ...t, metadata };
}

export function sameTemplate(
  a: PodTemplateSpec | undefined,
  b: PodTemplateSpec | undefined,
  slotKey: string,
  opts: NormalizeOptions = {},
): boolean {
  return canonicalJson(normalizeTemplate(a, slotKey, opts)) === canonicalJson(normalizeTemplate(b, slotKey, opts));
}

/** A short, stable fingerprint of a template's version (slot label set aside). */
export function templateHash(t: PodTemplateSpec | undefined, slotKey: string): string {
  return createHash('sha256')
    .update(canonicalJson(normalizeTemplate(t, slotKey, { ignoreRestart: true })))
    .digest('hex')
    .slice(0, 12);
}

/** `name=image` for each container (init containers first, marked). */
export function imagesOf(t: PodTemplateSpec | undefined): string[] {
  const init = (t?.spec?.initContainers ?? []).map((c) => `init:${c.name}=${c.image ?? ''}`);
  const main = (t?.spec?.containers ?? []).map((c) => `${c.name}=${c.image ?? ''}`);
  return [...init, ...main];
}

/** What kind of change turns template a into b, in words for a warning: "image change" or "pod template change". */
export function describeChange(a: PodTemplateSpec | undefined, b: PodTemplateSpec | undefined, slotKey: string): string {
  const strip = (t: PodTemplateSpec | undefined) => {
    const n = structuredClone(normalizeTemplate(t, slotKey, { ignoreRestart: true })) as {
      spec?: { containers?: { image?: string }[]; initContainers?: { image?: string }[] };
    } | null;
    for (const c of [...(n?.spec?.containers ?? []), ...(n?.spec?.initContainers ?? [])]) delete c.image;
    return canonicalJson(n);
  };
  const imagesChanged = canonicalJson(imagesOf(a)) !== canonicalJson(imagesOf(b));
  if (imagesChanged && strip(a) === strip(b)) return 'image change';
  return 'pod template change';
}
