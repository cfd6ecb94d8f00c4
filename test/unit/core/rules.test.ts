// The rules that have one home each in the core: the slot key and the active Service (app.ts),
// the previous version and the switch record (history.ts), the switch readiness (switch-readiness.ts),
// the slot label on a template (template.ts).
import { describe, expect, it } from 'vitest';
import { activeServiceOf, annotatedSlotKey, colourKeyOf } from '../../../src/core/app.ts';
import { CHECK_TEMPLATE_ANNOTATION, readCheck } from '../../../src/core/checks.ts';
import { holdsPreviousVersion, switchRecord, type SwitchRecord } from '../../../src/core/history.ts';
import { HISTORY_ANNOTATION, PENDING_CHANGE_ANNOTATION, SLOT_LABEL_ANNOTATION } from '../../../src/core/labels.ts';
import { switchReadiness } from '../../../src/core/switch-readiness.ts';
import { templateHash, withSlotLabel } from '../../../src/core/template.ts';
import { annotated, deployment, edit, IMAGE_V2, NOW, SEAL, sealedRecord, service, shop, viewOf, withImage } from './builders.ts';

describe('the slot key', () => {
  const d = deployment({ colour: 'blue' });
  it('annotatedSlotKey: the active Service, then any Service, then any Deployment; none: undefined', () => {
    const s = (v: string) => service({ annotations: { [SLOT_LABEL_ANNOTATION]: v } });
    expect(annotatedSlotKey({ deployments: [d], services: [service()] })).toBeUndefined();
    expect(annotatedSlotKey({ deployments: [annotated(d, { [SLOT_LABEL_ANNOTATION]: 'env' })], services: [service()] })).toBe('env');
    expect(annotatedSlotKey({ deployments: [annotated(d, { [SLOT_LABEL_ANNOTATION]: 'env' })], services: [s('version')] })).toBe('version');
    expect(annotatedSlotKey({ deployments: [], services: [s('version'), s('tier')] }, s('tier'))).toBe('tier');
  });
  it('colourKeyOf: the one label with a colour in both the selector and the template', () => {
    expect(colourKeyOf(deployment({ colour: 'green', slotKey: 'environment' }))).toBe('environment');
    expect(colourKeyOf(edit(d, (c) => delete c.spec!.selector!.matchLabels!.slot))).toBeUndefined();
    expect(colourKeyOf(deployment({ colour: 'blue', extraLabels: { tier: 'green' } }))).toBeUndefined(); // two: ambiguous
    expect(colourKeyOf(deployment({ colour: 'purple' }))).toBeUndefined();
  });
});

describe('activeServiceOf', () => {
  const role = (name: string, r?: string) => service({ name, ...(r ? { role: r } : {}) });
  it.each<[string, ReturnType<typeof service>[], string | undefined]>([
    ['the one annotated active', [role('a', 'active'), role('b'), role('p', 'preview')], 'a'],
    ['two annotated active: none', [role('a', 'active'), role('b', 'active')], undefined],
    ['none annotated: the only one', [role('a'), role('p', 'preview')], 'a'],
    ['none annotated, two: none', [role('a'), role('b')], undefined],
    ['a role that is neither active nor preview counts as none', [role('a', 'front')], 'a'],
    ['only previews: none', [role('p', 'preview')], undefined],
  ])('%s', (_n, services, want) => {
    expect(activeServiceOf(services)?.metadata.name).toBe(want);
  });
  it('is what resolveApp picks', () => {
    for (const services of [
      [role('a'), role('b', 'active')],
      [role('a'), role('p', 'preview')],
      [role('a'), role('b')],
    ]) {
      expect(viewOf([], services).active?.metadata.name).toBe(activeServiceOf(services)?.metadata.name);
    }
  });
});

describe('the previous version and the switch record', () => {
  const { blue, green, svc } = shop({ idleImage: IMAGE_V2 });
  const switched = (rec: SwitchRecord) => viewOf([blue, green], [annotated(svc, { [HISTORY_ANNOTATION]: JSON.stringify([rec]) })]);
  it('switchRecord: kind, from, to, at, the extra fields, then both fingerprints (the history JSON, byte for byte)', () => {
    const rec = switchRecord(viewOf([blue, green], [svc]), 'rollback', 'blue', 'green', NOW, { by: 'kube-bluegreen', reason: 'why' });
    expect(JSON.stringify(rec)).toBe(
      JSON.stringify({
        kind: 'rollback',
        from: 'blue',
        to: 'green',
        at: NOW.toISOString(),
        by: 'kube-bluegreen',
        reason: 'why',
        fromTemplate: templateHash(blue.spec!.template, 'slot'),
        toTemplate: templateHash(green.spec!.template, 'slot'),
      }),
    );
  });
  it('holdsPreviousVersion: the last switch left that colour, and its template is the one it had', () => {
    const rec = switchRecord(viewOf([blue, green], [svc]), 'switch', 'green', 'blue', NOW);
    expect(holdsPreviousVersion(switched(rec), 'green')).toBe(true);
    expect(holdsPreviousVersion(switched(rec), 'blue')).toBe(false);
    expect(holdsPreviousVersion(viewOf([blue, withImage(green, 'other')], [annotated(svc, { [HISTORY_ANNOTATION]: JSON.stringify([rec]) })]), 'green')).toBe(
      false,
    );
    expect(holdsPreviousVersion(viewOf([blue, green], [svc]), 'green')).toBe(false); // no history
    expect(holdsPreviousVersion(viewOf([blue], [annotated(svc, { [HISTORY_ANNOTATION]: JSON.stringify([rec]) })]), 'green')).toBe(false); // no Deployment
  });
});

describe('switchReadiness', () => {
  const { blue, green, svc } = shop({ idleImage: IMAGE_V2 });
  const read = (d: Parameters<typeof readCheck>[0], p: Parameters<typeof readCheck>[1]) => readCheck(d, p, SEAL);
  it('ready: ok', () => {
    expect(switchReadiness(viewOf([blue, green], [svc]), 'green', green, 2, NOW, read)).toEqual({ ok: true });
  });
  it('a change recorded and not landed yet blocks first', () => {
    const pending = annotated(blue, { [PENDING_CHANGE_ANNOTATION]: sealedRecord(blue, { at: new Date(NOW.getTime() - 2000).toISOString() }) });
    expect(switchReadiness(viewOf([pending, green], [svc]), 'green', green, 2, NOW, read)).toMatchObject({ ok: false, blocker: 'pending' });
  });
  it('then the pre-switch check', () => {
    const withPre = annotated(svc, { [CHECK_TEMPLATE_ANNOTATION.pre]: 'shop-smoke' });
    expect(switchReadiness(viewOf([blue, green], [withPre]), 'green', green, 2, NOW, read)).toMatchObject({ ok: false, blocker: 'checking' });
  });
  it("the check's exemption (the version live before the last switch) is judged on checkView's history", () => {
    const withPre = annotated(svc, { [CHECK_TEMPLATE_ANNOTATION.pre]: 'shop-smoke' });
    const back = switchRecord(viewOf([blue, green], [withPre]), 'switch', 'green', 'blue', NOW);
    const appended = viewOf([blue, green], [annotated(withPre, { [HISTORY_ANNOTATION]: JSON.stringify([back]) })]);
    const stored = viewOf([blue, green], [withPre]);
    expect(switchReadiness(appended, 'green', green, 2, NOW, read)).toEqual({ ok: true });
    expect(switchReadiness(appended, 'green', green, 2, NOW, read, stored)).toMatchObject({ ok: false, blocker: 'checking' });
  });
  it('then rollout and availability at the required replicas', () => {
    const r = switchReadiness(viewOf([blue, green], [svc]), 'green', green, 3, NOW, read);
    expect(r).toEqual({ ok: false, blocker: 'not-ready', reason: 'shop-green is scaled to 2 replicas, fewer than the 3 the live colour runs' });
  });
});

describe('withSlotLabel', () => {
  it('sets the slot label, keeps the other labels, and leaves the original alone', () => {
    const t = deployment({ colour: 'blue' }).spec!.template!;
    const g = withSlotLabel(t, 'slot', 'green');
    expect(g.metadata!.labels).toEqual({ ...t.metadata!.labels, slot: 'green' });
    expect(t.metadata!.labels!.slot).toBe('blue');
    expect(g.spec).toBe(t.spec);
  });
});
