// The record of a redirected change. The mutating webhook writes nothing of its
// own: it patches the user's request so the live Deployment keeps its template
// and carries this record, stored only if the request is stored. The reconciler
// applies it to the idle colour and removes it.
//
// A record is sealed with an HMAC whose key only the webhook holds, and bound to
// the Deployment (uid) and the exact version the request updated (its
// oldObject's resourceVersion): one cannot be planted, altered, or replayed from
// a dry run or an old ReplicaSet (`kubectl rollout undo` copies annotations back).
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AppView } from './app.ts';
import type { Deployment, PodTemplateSpec } from './k8s-types.ts';
import { annotationsOf, isRecord } from './k8s-types.ts';
import { type Colour, COLOURS, isColour, LAST_CHANGE_ANNOTATION, PENDING_CHANGE_ANNOTATION } from './labels.ts';
import { canonicalJson } from './template.ts';

export interface PendingChange {
  v: 1;
  /** The requested pod template, as the user sent it (slot label of the colour it was sent to). */
  template: PodTemplateSpec;
  /** templateHash of `template`. */
  hash: string;
  /** templateHash of each colour's template when the change was recorded: a colour changed since then has a newer change. */
  bases: Partial<Record<Colour, string>>;
  /** The colour that was live (the holder) and the one that was idle when recorded. */
  from: Colour;
  to: Colour;
  /** The live replica count when recorded: the idle colour is raised to at least this. */
  minReplicas: number;
  /** "image change" or "pod template change". */
  summary: string;
  by: string;
  request: string;
  at: string;
  /** uid of the Deployment that holds the record, and the resourceVersion the request updated. */
  deployment: string;
  base: string;
  /** Earlier changes this one replaced before they were applied (newest first, REPLACED_KEPT at most). */
  replaces?: ReplacedChange[];
  /** How many more it replaced than `replaces` names. */
  replacedMore?: number;
}

export interface ReplacedChange {
  by: string;
  request: string;
  at: string;
  summary: string;
}

/** How many replaced changes a record names (about 130 bytes each); the rest are counted. */
export const REPLACED_KEPT = 50;

export type PendingFields = Omit<PendingChange, 'v'>;

/** Signs and checks records. The key never leaves the webhook. */
export interface RecordSeal {
  seal(fields: PendingFields): string;
  open(value: string): PendingChange | undefined;
  /** Any other record (a check result): JSON with a `sig`. Each kind carries its own `kind` field, so one never opens as another. */
  sealObject(body: Record<string, unknown>): string;
  openObject(value: string): Record<string, unknown> | undefined;
}

function mac(key: Buffer, body: string): string {
  return createHmac('sha256', key).update(body).digest('base64url');
}

export function recordSeal(key: Buffer): RecordSeal {
  return {
    seal(fields) {
      const body = { v: 1 as const, ...fields };
      return JSON.stringify({ ...body, sig: mac(key, canonicalJson(body)) });
    },
    open(value) {
      const parsed = parseRecord(value);
      if (!parsed) return undefined;
      const { sig, ...body } = parsed.raw;
      if (typeof sig !== 'string') return undefined;
      const want = Buffer.from(mac(key, canonicalJson(body)));
      const got = Buffer.from(sig);
      return want.length === got.length && timingSafeEqual(want, got) ? parsed.record : undefined;
    },
    sealObject(body) {
      return JSON.stringify({ ...body, sig: mac(key, canonicalJson(body)) });
    },
    openObject(value) {
      let raw: unknown;
      try {
        raw = JSON.parse(value);
      } catch {
        return undefined;
      }
      if (!isRecord(raw) || typeof raw.sig !== 'string') return undefined;
      const { sig, ...body } = raw;
      const want = Buffer.from(mac(key, canonicalJson(body)));
      const got = Buffer.from(sig as string);
      return want.length === got.length && timingSafeEqual(want, got) ? body : undefined;
    },
  };
}

function parseRecord(value: string): { raw: Record<string, unknown>; record: PendingChange } | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (!isRecord(raw) || raw.v !== 1 || !isRecord(raw.template) || !isColour(raw.from) || !isColour(raw.to)) return undefined;
  for (const k of ['hash', 'summary', 'by', 'request', 'at', 'deployment', 'base'] as const) if (typeof raw[k] !== 'string') return undefined;
  if (typeof raw.minReplicas !== 'number' || !isRecord(raw.bases)) return undefined;
  const { sig: _sig, ...record } = raw;
  return { raw, record: record as unknown as PendingChange };
}

/**
 * A record read without its seal, for those who cannot check it (kubectl bg): what it says, to show.
 * Never act on it: the webhook's reconciler drops records that do not verify.
 */
export function readPendingUnverified(d: Deployment | undefined): PendingChange | undefined {
  const v = annotationsOf(d)[PENDING_CHANGE_ANNOTATION];
  return v === undefined ? undefined : parseRecord(v)?.record;
}

/** Whether a Deployment carries a pending-change annotation at all (verified or not). */
export function hasPendingAnnotation(d: Deployment | undefined): boolean {
  return annotationsOf(d)[PENDING_CHANGE_ANNOTATION] !== undefined;
}

/**
 * What became of a recorded change, written by the reconciler on the colour it went to (in the same
 * patch as the change itself): applied, or not and why. A record is settled once a Deployment of its
 * app names its request here; the record itself stays on the live colour until the next change
 * replaces it, so the reconciler never writes the live Deployment.
 */
export interface ChangeOutcome {
  request: string;
  /** The Deployment that held the record. */
  from: string;
  by: string;
  at: string;
  summary: string;
  /** Images of the change, and its templateHash. */
  images: string[];
  hash: string;
  applied: boolean;
  /** Why it was not applied. */
  reason?: string;
  /** Earlier changes (request uids) this one replaced before they were applied, and how many more. */
  replaced?: string[];
  replacedMore?: number;
  /** When the reconciler settled it. */
  settledAt: string;
}

export function readLastChange(d: Deployment | undefined): ChangeOutcome | undefined {
  const v = annotationsOf(d)[LAST_CHANGE_ANNOTATION];
  if (v === undefined) return undefined;
  try {
    const o = JSON.parse(v) as unknown;
    return isRecord(o) && typeof o.request === 'string' && typeof o.applied === 'boolean' ? (o as unknown as ChangeOutcome) : undefined;
  } catch {
    return undefined;
  }
}

/** The outcome of the change recorded as `request`, if the reconciler has settled it (on any colour of the app). */
export function outcomeOf(view: AppView, request: string): ChangeOutcome | undefined {
  for (const c of COLOURS) {
    const o = readLastChange(view.deployments[c]);
    if (o?.request === request) return o;
  }
  return undefined;
}

/**
 * Whether a record is settled: the reconciler wrote its outcome, or it is older than a change the
 * reconciler has settled since (the newest change wins; an older one is never applied after it).
 * The second holds when an outcome annotation was lost: `kubectl rollout undo` copies a
 * ReplicaSet's old annotations back onto its Deployment.
 */
export function isSettled(view: AppView, record: Pick<PendingChange, 'request' | 'at'>): boolean {
  if (outcomeOf(view, record.request)) return true;
  for (const c of COLOURS) {
    const o = readLastChange(view.deployments[c]);
    if (o && o.at > record.at) return true;
  }
  return false;
}

/** A record not settled yet, with its holder. `record` is read without its seal (undefined: unreadable). */
export interface Pending {
  holder: Deployment;
  record?: PendingChange;
}

/** The app's changes recorded and not yet settled by the reconciler. */
export function pendingChanges(view: AppView): Pending[] {
  const out: Pending[] = [];
  for (const c of COLOURS) {
    const d = view.deployments[c];
    if (!hasPendingAnnotation(d)) continue;
    const record = readPendingUnverified(d);
    if (record && isSettled(view, record)) continue;
    out.push(record ? { holder: d!, record } : { holder: d! });
  }
  return out;
}

/** RFC 6901: a map key as one JSON-pointer segment. */
export function escapePointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function annotationPath(key: string): string {
  return `/metadata/annotations/${escapePointer(key)}`;
}

/**
 * JSON-patch ops that make annotation `key` of an object (whose annotations are `current`) equal
 * `value` (undefined: absent). Adds the map when the object has none.
 */
export function setAnnotationOps(
  current: Record<string, string> | undefined,
  key: string,
  value: string | undefined,
): { op: string; path: string; value?: unknown }[] {
  if (value === undefined) return current && key in current ? [{ op: 'remove', path: annotationPath(key) }] : [];
  if (!current) return [{ op: 'add', path: '/metadata/annotations', value: { [key]: value } }];
  return [{ op: 'add', path: annotationPath(key), value }];
}

/**
 * Why a switch to `to` must wait: a change redirected to the idle colour is recorded and has not
 * been applied yet (switching now would serve the idle colour without it, and the change would then
 * go to the colour that became idle). One rule for the webhook's gate on the Service and for
 * `kubectl bg switch`.
 */
export function pendingSwitchBlocker(view: AppView, to: Colour, now: Date): string | undefined {
  const p = pendingChanges(view)[0];
  if (!p) return undefined;
  const r = p.record;
  const age = r ? Math.max(0, Math.round((now.getTime() - Date.parse(r.at)) / 1000)) : undefined;
  const what = r ? `the ${r.summary} by ${r.by || 'an unknown user'} (${age}s ago)` : 'a redirected change';
  const from = p.holder.metadata.name;
  const other = COLOURS.map((c) => view.deployments[c]).find((d) => d && d.metadata.name !== from);
  return `${what} recorded on ${from} has not reached ${other?.metadata.name ?? to} yet; it is being applied`;
}
