// The redirect of a live-colour change to the idle colour: the patches it
// makes, computed from fresh objects so a retry after a conflict is the same
// pure computation on newer input.
import type { Operation } from 'fast-json-patch';
import type { AppView } from './app.ts';
import type { Deployment, PodTemplateSpec, Service, UserInfo } from './k8s-types.ts';
import { annotationsOf } from './k8s-types.ts';
import {
  type Colour,
  LAST_REDIRECT_ANNOTATION,
  REDIRECT_IN_FLIGHT_ANNOTATION,
  REDIRECT_LOG_LENGTH,
  REDIRECT_IN_FLIGHT_SECONDS,
} from './labels.ts';
import { templateHash } from './template.ts';

export interface RedirectEffect {
  kind: 'redirect';
  namespace: string;
  app: string;
  slotKey: string;
  activeService: string;
  live: { name: string; colour: Colour };
  idle: { name: string; colour: Colour };
  /** The requested template, its slot label set to the idle colour. */
  template: PodTemplateSpec;
  /** Its fingerprint (templateHash), computed on first use: a dry run never needs it. */
  readonly templateHash: string;
  /** The idle colour is raised to at least this many replicas (the live count). */
  minReplicas: number;
  /** "image change" or "pod template change". */
  summary: string;
  requestUid: string;
  user: UserInfo;
}

/** A RedirectEffect whose templateHash is computed once, when first read. */
export function makeRedirectEffect(fields: Omit<RedirectEffect, 'templateHash'>): RedirectEffect {
  let hash: string | undefined;
  return {
    ...fields,
    get templateHash() {
      return (hash ??= templateHash(fields.template, fields.slotKey));
    },
  };
}

export function escapePointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * JSON patch applying the redirect to the idle Deployment. Guarded by what matters, not by
 * resourceVersion (which every status update moves while the idle colour rolls out): its spec is
 * the one read (metadata.generation) and it is still the idle colour (the template's slot label).
 * A switch racing the redirect is caught on the active Service instead (see inFlightPatch).
 */
export function idlePatch(idle: Deployment, e: RedirectEffect, now: Date): Operation[] {
  const ops: Operation[] = [
    { op: 'test', path: '/metadata/generation', value: idle.metadata.generation },
    { op: 'test', path: `/spec/template/metadata/labels/${escapePointer(e.slotKey)}`, value: e.idle.colour },
    { op: 'replace', path: '/spec/template', value: e.template },
  ];
  if ((idle.spec?.replicas ?? 1) < e.minReplicas) ops.push({ op: 'replace', path: '/spec/replicas', value: e.minReplicas });
  const rec: RedirectRecord = { from: e.live.name, request: e.requestUid, by: e.user.username ?? '', at: now.toISOString(), template: e.templateHash };
  const log = [...redirectLog(idle).slice(-(REDIRECT_LOG_LENGTH - 1)), rec];
  if (!idle.metadata.annotations) ops.push({ op: 'add', path: '/metadata/annotations', value: {} });
  ops.push({ op: 'add', path: `/metadata/annotations/${escapePointer(LAST_REDIRECT_ANNOTATION)}`, value: JSON.stringify(log) });
  return ops;
}

export interface RedirectRecord {
  from: string;
  request: string;
  by: string;
  at: string;
  /** templateHash of what was redirected. */
  template?: string;
}

/** The redirects recorded on a Deployment, oldest first (a single record of older versions reads as one). */
export function redirectLog(d: Deployment): RedirectRecord[] {
  const raw = annotationsOf(d)[LAST_REDIRECT_ANNOTATION];
  if (!raw) return [];
  try {
    const v = JSON.parse(raw) as unknown;
    const list = Array.isArray(v) ? v : [v];
    return list.filter((r): r is RedirectRecord => !!r && typeof r === 'object' && typeof (r as RedirectRecord).at === 'string');
  } catch {
    return [];
  }
}

export interface InFlight {
  to: Colour;
  template: string;
  at: string;
}

/**
 * Whether this change has reached the idle colour already. The apiserver re-runs admission (with a
 * new request uid) when its own update of the live Deployment retries, so one `kubectl set image`
 * can arrive twice; between the two calls another user's change may have landed on the idle colour.
 * - 'current': the idle colour runs this template;
 * - 'superseded': the same user redirected this same template moments ago (within the in-flight
 *   window) and a newer change has replaced it since: done, re-applying would undo the newer change;
 * - false: not redirected yet.
 */
export function alreadyRedirected(idle: Deployment, e: RedirectEffect, now: Date): 'current' | 'superseded' | false {
  if (templateHash(idle.spec?.template, e.slotKey) === e.templateHash && (idle.spec?.replicas ?? 1) >= e.minReplicas) return 'current';
  const recent = redirectLog(idle).some(
    (r) => r.template === e.templateHash && r.by === (e.user.username ?? '') && (now.getTime() - Date.parse(r.at)) / 1000 < REDIRECT_IN_FLIGHT_SECONDS,
  );
  return recent ? 'superseded' : false;
}

/**
 * Merge patch recording the redirect on the active Service, guarded by the Service's
 * resourceVersion; and the record's value, which clearInFlightPatch later removes only if unchanged.
 */
export function inFlightPatch(svc: Service, e: RedirectEffect, now: Date): { patch: Record<string, unknown>; value: string } {
  const rec: InFlight = { to: e.idle.colour, template: e.templateHash, at: now.toISOString() };
  const value = JSON.stringify(rec);
  return { patch: { metadata: { resourceVersion: svc.metadata.resourceVersion, annotations: { [REDIRECT_IN_FLIGHT_ANNOTATION]: value } } }, value };
}

/**
 * JSON patch removing the in-flight record once the idle colour has the change, but only if the
 * record is still the one this redirect wrote (a concurrent redirect may have replaced it).
 */
export function clearInFlightPatch(recordValue: string): Record<string, unknown>[] {
  const path = `/metadata/annotations/${escapePointer(REDIRECT_IN_FLIGHT_ANNOTATION)}`;
  return [
    { op: 'test', path, value: recordValue },
    { op: 'remove', path },
  ];
}

export function readInFlight(svc: Service | undefined): InFlight | undefined {
  const raw = annotationsOf(svc)[REDIRECT_IN_FLIGHT_ANNOTATION];
  if (!raw) return undefined;
  try {
    const v = JSON.parse(raw) as InFlight;
    return typeof v.to === 'string' && typeof v.template === 'string' && typeof v.at === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A reason to hold a switch to `to` back: a redirect to that colour was recorded
 * moments ago and the colour does not run the redirected template yet.
 */
export function redirectInFlight(view: AppView, svc: Service | undefined, to: Colour, now: Date): string | undefined {
  const rec = readInFlight(svc);
  if (!rec || rec.to !== to) return undefined;
  const age = (now.getTime() - Date.parse(rec.at)) / 1000;
  if (!(age >= -5 && age < REDIRECT_IN_FLIGHT_SECONDS)) return undefined;
  const d = view.deployments[to];
  if (d && templateHash(d.spec?.template, view.slotKey) === rec.template) return undefined;
  return `a change is being redirected to ${d?.metadata.name ?? to} right now (${Math.max(0, Math.round(age))}s ago)`;
}
