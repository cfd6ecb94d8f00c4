import fjp from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import type { Deployment, Service } from '../../../src/core/k8s-types.ts';
import { LAST_REDIRECT_ANNOTATION, REDIRECT_IN_FLIGHT_ANNOTATION } from '../../../src/core/labels.ts';
import {
  clearInFlightPatch,
  escapePointer,
  alreadyRedirected,
  idlePatch,
  redirectLog,
  inFlightPatch,
  readInFlight,
  type RedirectEffect,
  redirectInFlight,
} from '../../../src/core/redirect.ts';
import { templateHash } from '../../../src/core/template.ts';
import { ADMIN, annotated, deployment, edit, IMAGE_V2, NOW, service, viewOf, withImage } from './builders.ts';

const blue = deployment({ colour: 'blue' });
const green = deployment({ colour: 'green', resourceVersion: '42', annotations: { keep: 'me' } });
const svc = service({ role: 'active', resourceVersion: '77' });
const template = withImage(green, IMAGE_V2).spec!.template!;
const effect: RedirectEffect = {
  kind: 'redirect',
  namespace: 'prod',
  app: 'shop',
  slotKey: 'slot',
  activeService: 'shop',
  live: { name: 'shop-blue', colour: 'blue' },
  idle: { name: 'shop-green', colour: 'green' },
  template,
  templateHash: templateHash(template, 'slot'),
  minReplicas: 2,
  summary: 'image change',
  requestUid: 'req-9',
  user: ADMIN,
};
const entry = { from: 'shop-blue', request: 'req-9', by: 'alice', at: NOW.toISOString(), template: templateHash(template, 'slot') };
const record = JSON.stringify([entry]);

describe('idlePatch preconditions, applied', () => {
  const apply = (doc: Deployment) => fjp.applyPatch(structuredClone(doc), idlePatch(green, effect, NOW), true, false).newDocument;
  it('a status update since the read (resourceVersion moved, generation not) does not stop it', () => {
    const out = apply(edit(green, (c) => ((c.metadata.resourceVersion = '99'), (c.status = { observedGeneration: 9, availableReplicas: 1 }))));
    expect(out.spec!.template).toEqual(template);
  });
  it.each([
    { name: 'a spec change since the read (generation moved)', doc: edit(green, (c) => (c.metadata.generation = green.metadata.generation! + 1)) },
    { name: 'the Deployment is not the idle colour any more', doc: edit(green, (c) => (c.spec!.template!.metadata!.labels!.slot = 'blue')) },
  ])('$name: the patch fails its test', ({ doc }) => {
    expect(() => apply(doc)).toThrow(/Test operation failed/);
  });
});

describe('alreadyRedirected: the same change arriving twice', () => {
  const runsIt = edit(green, (c) => (c.spec!.template = structuredClone(template)));
  const logged = (by: string, secondsAgo: number, tpl = entry.template) =>
    edit(green, (c) => (c.metadata.annotations = { [LAST_REDIRECT_ANNOTATION]: JSON.stringify([{ ...entry, by, template: tpl, at: new Date(NOW.getTime() - secondsAgo * 1000).toISOString() }]) }));
  it.each([
    { name: 'idle already runs the redirected template at the live count', idle: runsIt, want: 'current' },
    { name: 'idle runs another template, nothing logged', idle: green, want: false },
    { name: 'idle runs it but is scaled below the live count', idle: edit(runsIt, (c) => (c.spec!.replicas = 1)), want: false },
    { name: 'the same user redirected this template 5 s ago, since replaced', idle: logged('alice', 5), want: 'superseded' },
    { name: 'another user redirected this template 5 s ago', idle: logged('bob', 5), want: false },
    { name: 'the same user redirected it 60 s ago (a new request, not a repeat)', idle: logged('alice', 60), want: false },
    { name: 'the same user redirected another template 5 s ago', idle: logged('alice', 5, 'other'), want: false },
  ])('$name -> $want', ({ idle, want }) => {
    expect(alreadyRedirected(idle, effect, NOW)).toBe(want);
  });

  it('the log keeps the last five redirects, newest last; a single record of older versions is read as one', () => {
    let d = edit(green, (c) => (c.metadata.annotations = { [LAST_REDIRECT_ANNOTATION]: JSON.stringify({ ...entry, request: 'old' }) }));
    expect(redirectLog(d).map((r) => r.request)).toEqual(['old']);
    for (let i = 0; i < 6; i++) d = fjp.applyPatch(structuredClone(d), idlePatch(d, { ...effect, requestUid: `r${i}` }, NOW), false, false).newDocument;
    expect(redirectLog(d).map((r) => r.request)).toEqual(['r1', 'r2', 'r3', 'r4', 'r5']);
  });
});

describe('escapePointer', () => {
  it.each([
    { key: 'plain', want: 'plain' },
    { key: 'bluegreen.io/last-redirect', want: 'bluegreen.io~1last-redirect' },
    { key: 'a~b/c', want: 'a~0b~1c' },
  ])('$key -> $want', ({ key, want }) => {
    expect(escapePointer(key)).toBe(want);
  });
});

describe('idlePatch', () => {
  it('idle with annotations and enough replicas: tests of generation and colour, template, record', () => {
    expect(idlePatch(green, effect, NOW)).toEqual([
      { op: 'test', path: '/metadata/generation', value: green.metadata.generation },
      { op: 'test', path: '/spec/template/metadata/labels/slot', value: 'green' },
      { op: 'replace', path: '/spec/template', value: template },
      { op: 'add', path: '/metadata/annotations/bluegreen.io~1last-redirect', value: record },
    ]);
  });

  it.each([
    { name: 'scaled to 0', replicas: 0, raise: true },
    { name: 'scaled to 1', replicas: 1, raise: true },
    { name: 'at the live count', replicas: 2, raise: false },
    { name: 'above the live count (never lowered)', replicas: 3, raise: false },
  ])('idle $name -> replicas raised: $raise', ({ replicas, raise }) => {
    const idle = edit(green, (c) => (c.spec!.replicas = replicas));
    const ops = idlePatch(idle, effect, NOW);
    expect(ops.filter((o) => o.path === '/spec/replicas')).toEqual(raise ? [{ op: 'replace', path: '/spec/replicas', value: 2 }] : []);
    const out = fjp.applyPatch(structuredClone(idle), ops, true, false).newDocument;
    expect(out.spec!.replicas).toBe(Math.max(replicas, 2));
  });

  it('idle without annotations: the map is created first', () => {
    const bare = edit(green, (c) => delete c.metadata.annotations);
    const ops = idlePatch(bare, effect, NOW);
    expect(ops.slice(3)).toEqual([
      { op: 'add', path: '/metadata/annotations', value: {} },
      { op: 'add', path: '/metadata/annotations/bluegreen.io~1last-redirect', value: record },
    ]);
    const out = fjp.applyPatch(structuredClone(bare), ops, true, false).newDocument;
    expect(out.metadata.annotations).toEqual({ [LAST_REDIRECT_ANNOTATION]: record });
    expect(out.spec!.template).toEqual(template);
  });

  it('applied: the template replaced, other annotations kept', () => {
    const out = fjp.applyPatch(structuredClone(green), idlePatch(green, effect, NOW), true, false).newDocument;
    expect(out).toEqual(edit(green, (c) => {
      c.spec!.template = template;
      c.metadata.annotations = { keep: 'me', [LAST_REDIRECT_ANNOTATION]: record };
    }));
  });

  it('the record names no user when unknown', () => {
    const ops = idlePatch(green, { ...effect, user: {} }, NOW);
    const rec = ops.find((o) => o.path === `/metadata/annotations/${escapePointer(LAST_REDIRECT_ANNOTATION)}`) as { value: string };
    expect(JSON.parse(rec.value)).toEqual([{ ...entry, by: '' }]);
  });
});

describe('inFlightPatch / clearInFlightPatch / readInFlight', () => {
  const value = JSON.stringify({ to: 'green', template: effect.templateHash, at: NOW.toISOString() });

  it('inFlightPatch: a merge patch with the resourceVersion precondition, and the value it writes', () => {
    expect(inFlightPatch(svc, effect, NOW)).toEqual({
      patch: { metadata: { resourceVersion: '77', annotations: { [REDIRECT_IN_FLIGHT_ANNOTATION]: value } } },
      value,
    });
  });

  it('clearInFlightPatch: test the exact record, then remove it', () => {
    const ops = clearInFlightPatch(value);
    expect(ops).toEqual([
      { op: 'test', path: '/metadata/annotations/bluegreen.io~1redirect-in-flight', value },
      { op: 'remove', path: '/metadata/annotations/bluegreen.io~1redirect-in-flight' },
    ]);
    const withRec = annotated(svc, { [REDIRECT_IN_FLIGHT_ANNOTATION]: value, other: 'x' });
    const out = fjp.applyPatch(structuredClone(withRec), ops as unknown as fjp.Operation[], true, false).newDocument as Service;
    expect(out.metadata.annotations).toEqual({ 'bluegreen.io/role': 'active', other: 'x' });
  });

  it('clearInFlightPatch does not remove a record another redirect wrote since', () => {
    const other = annotated(svc, { [REDIRECT_IN_FLIGHT_ANNOTATION]: value.replace(effect.templateHash, 'aaaaaaaaaaaa') });
    expect(() => fjp.applyPatch(structuredClone(other), clearInFlightPatch(value) as unknown as fjp.Operation[], true, false)).toThrow(/Test operation failed/);
  });

  it.each([
    { name: 'a record', annotation: value, want: { to: 'green', template: effect.templateHash, at: NOW.toISOString() } },
    { name: 'none', annotation: undefined, want: undefined },
    { name: 'empty', annotation: '', want: undefined },
    { name: 'not JSON', annotation: '{to:green', want: undefined },
    { name: 'JSON null', annotation: 'null', want: undefined },
    { name: 'a JSON string', annotation: '"green"', want: undefined },
    { name: 'a field missing', annotation: JSON.stringify({ to: 'green', at: 'x' }), want: undefined },
    { name: 'a field of the wrong type', annotation: JSON.stringify({ to: 'green', template: 5, at: 'x' }), want: undefined },
  ])('readInFlight: $name', ({ annotation, want }) => {
    const s = annotation === undefined ? svc : annotated(svc, { [REDIRECT_IN_FLIGHT_ANNOTATION]: annotation });
    expect(readInFlight(s)).toEqual(want);
  });

  it('readInFlight(undefined)', () => {
    expect(readInFlight(undefined)).toBeUndefined();
  });
});

describe('redirectInFlight', () => {
  const view = viewOf([blue, green], [svc]);
  const ago = (s: number) => new Date(NOW.getTime() - s * 1000).toISOString();
  const withRec = (o: Record<string, unknown>) =>
    annotated(svc, { [REDIRECT_IN_FLIGHT_ANNOTATION]: JSON.stringify({ to: 'green', template: 'ffffffffffff', at: ago(3), ...o }) });
  it.each([
    { name: 'fresh record to green', svc: withRec({}), to: 'green', want: 'a change is being redirected to shop-green right now (3s ago)' },
    { name: 'asked about blue', svc: withRec({}), to: 'blue', want: undefined },
    { name: '29.9 s old', svc: withRec({ at: ago(29.9) }), to: 'green', want: 'a change is being redirected to shop-green right now (30s ago)' },
    { name: '30 s old', svc: withRec({ at: ago(30) }), to: 'green', want: undefined },
    { name: '5 s in the future', svc: withRec({ at: ago(-5) }), to: 'green', want: 'a change is being redirected to shop-green right now (0s ago)' },
    { name: '5.1 s in the future', svc: withRec({ at: ago(-5.1) }), to: 'green', want: undefined },
    { name: 'green runs the template', svc: withRec({ template: templateHash(green.spec!.template, 'slot') }), to: 'green', want: undefined },
    { name: 'no record', svc, to: 'green', want: undefined },
    { name: 'no Service', svc: undefined, to: 'green', want: undefined },
  ] as const)('$name -> $want', ({ svc: s, to, want }) => {
    expect(redirectInFlight(view, s, to, NOW)).toBe(want);
  });

  it('names the colour when its Deployment is missing', () => {
    expect(redirectInFlight(viewOf([blue], [svc]), withRec({}), 'green', NOW)).toBe('a change is being redirected to green right now (3s ago)');
  });
});
