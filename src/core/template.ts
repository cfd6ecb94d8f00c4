// Pod template comparison. Two templates are "the same version" when they are
// equal once the slot label (which differs by colour by design) and the
// rollout-restart stamp are set aside.
import { createHash } from 'node:crypto';
import { isRecord, type PodTemplateSpec } from './k8s-types.ts';
import { type Colour, RESTARTED_AT_ANNOTATION } from './labels.ts';

/** A piece of output text on canonicalJson's work stack. */
class Text {
  readonly s: string;
  constructor(s: string) {
    this.s = s;
  }
}

/**
 * JSON with object keys sorted, so equal values always serialise equally. Iterative: a template
 * nested thousands of levels deep (hostile input) cannot exhaust the call stack.
 */
export function canonicalJson(v: unknown): string {
  const out: string[] = [];
  const work: unknown[] = [v];
  while (work.length) {
    const x = work.pop();
    if (x instanceof Text) {
      out.push(x.s);
      continue;
    }
    if (x === null || typeof x !== 'object') {
      out.push(JSON.stringify(x) ?? 'null');
      continue;
    }
    if (Array.isArray(x)) {
      work.push(new Text(']'));
      for (let i = x.length - 1; i >= 0; i--) {
        work.push(x[i]);
        if (i > 0) work.push(new Text(','));
      }
      out.push('[');
      continue;
    }
    const o = x as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    work.push(new Text('}'));
    for (let i = keys.length - 1; i >= 0; i--) {
      work.push(o[keys[i]!]);
      work.push(new Text(`${i > 0 ? ',' : ''}${JSON.stringify(keys[i])}:`));
    }
    out.push('{');
  }
  return out.join('');
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

/** A template's metadata minus what is expected to differ between colours. Does not modify its input. */
function normalizeMetadata(md: PodTemplateSpec['metadata'], slotKey: string, opts: NormalizeOptions): NonNullable<PodTemplateSpec['metadata']> {
  const m = md ?? {};
  const labels = withoutKey(m.labels, slotKey);
  let annotations = m.annotations;
  if (opts.ignoreRestart) annotations = withoutKey(annotations, RESTARTED_AT_ANNOTATION);
  const metadata = { ...m, labels, annotations };
  if (!labels) delete metadata.labels;
  if (!annotations) delete metadata.annotations;
  if (metadata.creationTimestamp === null) delete metadata.creationTimestamp;
  return metadata;
}

/** The template minus what is expected to differ between colours. Does not modify its input. */
export function normalizeTemplate(t: PodTemplateSpec | undefined, slotKey: string, opts: NormalizeOptions = {}): unknown {
  if (!t) return null;
  return { ...t, metadata: normalizeMetadata(t.metadata, slotKey, opts) };
}

/** Whether two objects are jsonEqual once the keys `skip` accepts are left out (top level only). */
function jsonEqualExcept(x: Record<string, unknown>, y: Record<string, unknown>, skip: (key: string) => boolean): boolean {
  let nx = 0;
  for (const k in x) {
    if (x[k] === undefined || skip(k)) continue;
    nx++;
    if (!jsonEqual(x[k], y[k])) return false;
  }
  let ny = 0;
  for (const k in y) if (y[k] !== undefined && !skip(k)) ny++;
  return nx === ny;
}

const isMetadataOrSpec = (k: string) => k === 'metadata' || k === 'spec';
const isContainerList = (k: string) => k === 'containers' || k === 'initContainers';
const isImage = (k: string) => k === 'image';

/** How template b differs from a: 'none', in container images only ('image'), or otherwise ('other'). */
export type TemplateChange = 'none' | 'image' | 'other';

/**
 * How template b differs from template a, in one walk and without normalised copies of the specs:
 * the slot label is set aside, and with ignoreRestart the rollout-restart stamp. 'none' is what
 * sameTemplate means by the same version; 'image' is a change to container images and nothing else.
 * Throws a TypeError when a container list is not a list (the request is then malformed).
 */
export function templateChange(a: PodTemplateSpec | undefined, b: PodTemplateSpec | undefined, slotKey: string, opts: NormalizeOptions = {}): TemplateChange {
  if (!a || !b) return !a && !b ? 'none' : 'other';
  if (!isRecord(a) || !isRecord(b)) return jsonEqual(a, b) ? 'none' : 'other';
  for (const t of [a, b]) {
    const spec = t.spec;
    if (!isRecord(spec)) continue;
    for (const list of ['initContainers', 'containers'] as const)
      if (spec[list] !== undefined && spec[list] !== null && !Array.isArray(spec[list])) throw new TypeError(`spec.${list} is not a list`);
  }
  const meta = (t: Record<string, unknown>) => normalizeMetadata(t.metadata as PodTemplateSpec['metadata'], slotKey, opts);
  if (!jsonEqual(meta(a), meta(b))) return 'other';
  if (!jsonEqualExcept(a, b, isMetadataOrSpec)) return 'other';
  const sa: unknown = a.spec;
  const sb: unknown = b.spec;
  if (!isRecord(sa) || !isRecord(sb)) return jsonEqual(sa, sb) ? 'none' : 'other';
  if (!jsonEqualExcept(sa, sb, isContainerList)) return 'other';
  let images = false;
  for (const list of ['initContainers', 'containers'] as const) {
    const ca = sa[list];
    const cb = sb[list];
    if (!Array.isArray(ca) || !Array.isArray(cb)) {
      if (!jsonEqual(ca, cb)) return 'other';
      continue;
    }
    if (ca.length !== cb.length) return 'other';
    for (let i = 0; i < ca.length; i++) {
      const x: unknown = ca[i];
      const y: unknown = cb[i];
      if (!isRecord(x) || !isRecord(y)) {
        if (!jsonEqual(x, y)) return 'other';
        continue;
      }
      if (!jsonEqualExcept(x, y, isImage)) return 'other';
      if (!jsonEqual(x.image ?? '', y.image ?? '')) images = true;
    }
  }
  return images ? 'image' : 'none';
}

export function sameTemplate(a: PodTemplateSpec | undefined, b: PodTemplateSpec | undefined, slotKey: string, opts: NormalizeOptions = {}): boolean {
  return templateChange(a, b, slotKey, opts) === 'none';
}

/**
 * Where a slimmed copy of a template (the webhook's cache keeps only its labels) carries the
 * fingerprint of the whole one. A symbol: never serialised, never compared as a field.
 */
export const TEMPLATE_HASH = Symbol('kube-bluegreen.templateHash');

/**
 * A template reduced to its labels and its fingerprints, for the cache: one fingerprint for each
 * label that could be the app's slot key (its value is blue or green), as templateHash would give
 * for that key. A Deployment whose template has no such label is no colour of its app.
 */
export function slimTemplate(t: PodTemplateSpec): PodTemplateSpec {
  const labels = t.metadata?.labels;
  const hashes: Record<string, string> = {};
  for (const k in labels) if (labels[k] === 'blue' || labels[k] === 'green') hashes[k] = templateHash(t, k);
  // Not enumerable: copies, comparisons and JSON see a template of labels only.
  return Object.defineProperty(labels ? { metadata: { labels } } : {}, TEMPLATE_HASH, { value: hashes, enumerable: false }) as PodTemplateSpec;
}

/** A short, stable fingerprint of a template's version (slot label set aside). */
export function templateHash(t: PodTemplateSpec | undefined, slotKey: string): string {
  const kept = (t as { [TEMPLATE_HASH]?: Record<string, string> } | undefined)?.[TEMPLATE_HASH];
  // A slimmed template without this slot key is no colour: a fingerprint no real template has.
  if (kept !== undefined) return kept[slotKey] ?? `not-a-colour-under-${slotKey}`;
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
  return describeTemplateChange(templateChange(a, b, slotKey, { ignoreRestart: true }));
}

export function describeTemplateChange(change: TemplateChange): string {
  return change === 'image' ? 'image change' : 'pod template change';
}

/** The template as the pod template of `colour`: its slot label set (a shallow copy; the rest is shared). */
export function withSlotLabel(t: PodTemplateSpec, slotKey: string, colour: Colour): PodTemplateSpec {
  return { ...t, metadata: { ...t.metadata, labels: { ...t.metadata?.labels, [slotKey]: colour } } };
}
