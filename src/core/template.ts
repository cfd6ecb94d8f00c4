// Pod template comparison. Two templates are "the same version" when they are
// equal once the slot label (which differs by colour by design) and the
// rollout-restart stamp are set aside.
import { createHash } from 'node:crypto';
import type { Container, PodTemplateSpec } from './k8s-types.ts';
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

/**
 * Structural equality of JSON values, object key order ignored and a key holding undefined the
 * same as a missing one: what canonicalJson(a) === canonicalJson(b) says, without building strings
 * (this runs on every admission request).
 */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  const aArr = Array.isArray(a);
  if (aArr !== Array.isArray(b)) return false;
  if (aArr) {
    const x = a as unknown[];
    const y = b as unknown[];
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!jsonEqual(x[i], y[i])) return false;
    return true;
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let nx = 0;
  for (const k in x) {
    if (x[k] === undefined) continue;
    nx++;
    if (!jsonEqual(x[k], y[k])) return false;
  }
  let ny = 0;
  for (const k in y) if (y[k] !== undefined) ny++;
  return nx === ny;
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
  return jsonEqual(normalizeTemplate(a, slotKey, opts), normalizeTemplate(b, slotKey, opts));
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
  // The template with every container's image left out: shallow copies, the input untouched.
  const withoutImages = (t: PodTemplateSpec | undefined) => {
    const n = normalizeTemplate(t, slotKey, { ignoreRestart: true }) as PodTemplateSpec | null;
    if (!n?.spec) return n;
    const strip = (cs: Container[] | undefined) => (Array.isArray(cs) ? cs.map(({ image: _image, ...rest }) => rest) : cs);
    return { ...n, spec: { ...n.spec, containers: strip(n.spec.containers), initContainers: strip(n.spec.initContainers) } };
  };
  const imagesChanged = !jsonEqual(imagesOf(a), imagesOf(b));
  if (imagesChanged && jsonEqual(withoutImages(a), withoutImages(b))) return 'image change';
  return 'pod template change';
}
