import { describe, expect, it } from 'vitest';
import type { AppView } from '../../../src/core/app.ts';
import { appendHistory, type SwitchRecord } from '../../../src/core/history.ts';
import {
  FORCE_SWITCH_ANNOTATION,
  HISTORY_ANNOTATION,
  LIVE_LABEL,
  PENDING_CHANGE_ANNOTATION,
  SCALE_DOWN_AT_ANNOTATION,
  SCALE_DOWN_DELAY_ANNOTATION,
} from '../../../src/core/labels.ts';
import { planSwitch, scaleDownDelaySeconds, type SwitchOptions, type SwitchPlan, type SwitchRefusal } from '../../../src/core/switch-plan.ts';
import { templateHash } from '../../../src/core/template.ts';
import { annotated, deployment, IMAGE_V1, IMAGE_V2, NOW, sealedRecord, selecting, service, viewOf } from './builders.ts';

const blue = deployment({ colour: 'blue', resourceVersion: '11' });
const green = deployment({ colour: 'green', image: IMAGE_V2, resourceVersion: '12' });
const svc = service({ role: 'active', resourceVersion: '77' });
const switchOpts: SwitchOptions = { kind: 'switch', now: NOW };
const plus = (s: number) => new Date(NOW.getTime() + s * 1000).toISOString();

function ok(p: SwitchPlan | SwitchRefusal): SwitchPlan {
  if (!p.ok) throw new Error(`expected a plan, got ${p.code}: ${p.reason}`);
  return p;
}
function refused(p: SwitchPlan | SwitchRefusal): SwitchRefusal {
  if (p.ok) throw new Error(`expected a refusal, got a plan to ${p.to}`);
  return p;
}

describe('planSwitch: refusals', () => {
  const paused = deployment({ colour: 'green', paused: true });
  // A change redirected from the live colour, recorded on it, not applied to green yet.
  const pending = annotated(blue, { [PENDING_CHANGE_ANNOTATION]: sealedRecord(blue, { by: 'bob', at: new Date(NOW.getTime() - 2000).toISOString() }) });
  it.each<{ name: string; view: AppView; opts: SwitchOptions; want: SwitchRefusal }>([
    {
      name: 'no active Service',
      view: viewOf([blue, green], []),
      opts: switchOpts,
      want: { ok: false, code: 'ambiguous', reason: 'app shop has no active Service selecting blue or green', hint: 'kubectl bg status shop -n prod' },
    },
    {
      name: 'ambiguous Services',
      view: viewOf([blue, green], [service({ name: 'a' }), service({ name: 'b' })]),
      opts: switchOpts,
      want: {
        ok: false,
        code: 'ambiguous',
        reason: "app shop has 2 Services (a, b) and none is annotated bluegreen.io/role=active; run 'kubectl annotate service a bluegreen.io/role=active'",
        hint: 'kubectl bg status shop -n prod',
      },
    },
    {
      name: 'the active Service selects no colour',
      view: viewOf([blue, green], [selecting(svc, null)]),
      opts: switchOpts,
      want: {
        ok: false,
        code: 'ambiguous',
        reason: 'Service shop selects no slot label; it should select slot=blue or slot=green',
        hint: 'kubectl bg status shop -n prod',
      },
    },
    {
      name: 'to the live colour',
      view: viewOf([blue, green], [svc]),
      opts: { ...switchOpts, to: 'blue' },
      want: { ok: false, code: 'already-live', reason: 'blue is already the live colour of shop', hint: 'kubectl bg status shop -n prod' },
    },
    {
      name: 'no idle Deployment',
      view: viewOf([blue], [svc]),
      opts: switchOpts,
      want: { ok: false, code: 'no-target', reason: 'app shop has no green Deployment', hint: 'kubectl bg init shop -n prod --from deployment/<name>' },
    },
    {
      name: 'the idle colour is not ready',
      view: viewOf([blue, paused], [svc]),
      opts: switchOpts,
      want: {
        ok: false,
        code: 'not-ready',
        reason: 'cannot switch shop to green: shop-green is paused',
        hint: "wait with 'kubectl bg status shop -n prod --watch', or override with 'kubectl bg switch shop -n prod --force'",
      },
    },
    {
      name: 'a change redirected to the idle colour is pending',
      view: viewOf([pending, green], [svc]),
      opts: switchOpts,
      want: {
        ok: false,
        code: 'pending',
        reason: 'cannot switch shop to green: the image change by bob (2s ago) recorded on shop-blue has not reached shop-green yet; it is being applied',
        hint: "'kubectl bg switch shop -n prod --wait' waits for it to land and roll out, or override with 'kubectl bg switch shop -n prod --force'",
      },
    },
    {
      name: 'rollback to a colour scaled down',
      view: viewOf([blue, deployment({ colour: 'green', replicas: 0 })], [svc]),
      opts: { kind: 'rollback', now: NOW },
      want: {
        ok: false,
        code: 'scaled-down',
        reason: 'shop-green is scaled to 0; it needs 2 replicas before traffic moves back',
        hint: 'kubectl bg rollback shop -n prod',
        scaleUp: { deployment: 'shop-green', replicas: 2 },
      },
    },
    {
      name: 'rollback to a colour scaled down, even with --force',
      view: viewOf([blue, deployment({ colour: 'green', replicas: 1 })], [svc]),
      opts: { kind: 'rollback', now: NOW, force: true },
      want: {
        ok: false,
        code: 'scaled-down',
        reason: 'shop-green is scaled to 1; it needs 2 replicas before traffic moves back',
        hint: 'kubectl bg rollback shop -n prod',
        scaleUp: { deployment: 'shop-green', replicas: 2 },
      },
    },
    {
      name: 'rollback while a change to the scaled-down colour is pending: the pending change is the reason',
      view: viewOf([pending, deployment({ colour: 'green', replicas: 0 })], [svc]),
      opts: { kind: 'rollback', now: NOW },
      want: {
        ok: false,
        code: 'pending',
        reason: 'cannot rollback shop to green: the image change by bob (2s ago) recorded on shop-blue has not reached shop-green yet; it is being applied',
        hint: "'kubectl bg rollback shop -n prod --wait' waits for it to land and roll out, or override with 'kubectl bg rollback shop -n prod --force'",
      },
    },
    {
      name: 'rollback, not ready for another reason',
      view: viewOf([blue, paused], [svc]),
      opts: { kind: 'rollback', now: NOW },
      want: {
        ok: false,
        code: 'not-ready',
        reason: 'cannot rollback shop to green: shop-green is paused',
        hint: "wait with 'kubectl bg status shop -n prod --watch', or override with 'kubectl bg rollback shop -n prod --force'",
      },
    },
  ])('$name', ({ view, opts, want }) => {
    expect(refused(planSwitch(view, opts))).toEqual(want);
  });
});

describe('planSwitch: the plan', () => {
  it('switch to the idle colour: exact patches', () => {
    const preview = service({ name: 'shop-preview', role: 'preview', colour: 'green' });
    const p = ok(planSwitch(viewOf([blue, green], [svc, preview]), { ...switchOpts, by: 'alice' }));
    const record: SwitchRecord = {
      kind: 'switch',
      from: 'blue',
      to: 'green',
      at: NOW.toISOString(),
      images: [`app=${IMAGE_V2}`],
      fromTemplate: templateHash(blue.spec!.template, 'slot'),
      toTemplate: templateHash(green.spec!.template, 'slot'),
      fromGeneration: blue.metadata.generation!,
      by: 'alice',
    };
    expect(p).toEqual({
      ok: true,
      from: 'blue',
      to: 'green',
      record,
      activeService: {
        name: 'shop',
        patch: {
          metadata: {
            resourceVersion: '77',
            annotations: {
              [HISTORY_ANNOTATION]: JSON.stringify([record]),
              [SCALE_DOWN_AT_ANNOTATION]: plus(600),
              [FORCE_SWITCH_ANNOTATION]: null,
            },
          },
          spec: { selector: { slot: 'green' } },
        },
      },
      previews: [{ name: 'shop-preview', patch: { spec: { selector: { slot: 'blue' } } } }],
      liveLabels: [
        { name: 'shop-green', patch: { metadata: { labels: { [LIVE_LABEL]: 'true' } } } },
        { name: 'shop-blue', patch: { metadata: { labels: { [LIVE_LABEL]: 'false' } } } },
      ],
      scaleDownAt: plus(600),
      warnings: [],
    });
  });

  it('appends to the existing history', () => {
    const earlier: SwitchRecord = { kind: 'switch', from: 'green', to: 'blue', at: '2029-12-31T00:00:00.000Z' };
    const p = ok(planSwitch(viewOf([blue, green], [annotated(svc, { [HISTORY_ANNOTATION]: JSON.stringify([earlier]) })]), switchOpts));
    expect(p.activeService.patch).toMatchObject({
      metadata: { annotations: { [HISTORY_ANNOTATION]: appendHistory([earlier], p.record) } },
    });
    expect(JSON.parse((p.activeService.patch.metadata as { annotations: Record<string, string> }).annotations[HISTORY_ANNOTATION]!)).toHaveLength(2);
  });

  it('custom slot key: the selector patches use it', () => {
    const b = deployment({ colour: 'blue', slotKey: 'environment' });
    const g = deployment({ colour: 'green', slotKey: 'environment', image: IMAGE_V2 });
    const s = service({ role: 'active', slotKey: 'environment', annotateSlotKey: true });
    const pv = service({ name: 'p', role: 'preview', slotKey: 'environment', colour: 'green' });
    const p = ok(planSwitch(viewOf([b, g], [s, pv]), switchOpts));
    expect(p.activeService.patch.spec).toEqual({ selector: { environment: 'green' } });
    expect(p.previews).toEqual([{ name: 'p', patch: { spec: { selector: { environment: 'blue' } } } }]);
  });

  it('--force past an unready colour: a warning, the record marked, the override annotation set', () => {
    const paused = deployment({ colour: 'green', paused: true });
    const p = ok(planSwitch(viewOf([blue, paused], [svc]), { ...switchOpts, force: true }));
    expect(p.warnings).toEqual(['forced: shop-green is paused']);
    expect(p.record.forced).toBe(true);
    expect((p.activeService.patch.metadata as { annotations: Record<string, unknown> }).annotations[FORCE_SWITCH_ANNOTATION]).toBe('green');
  });

  it('--force when the colour is ready anyway: no override, not marked forced', () => {
    const p = ok(planSwitch(viewOf([blue, green], [svc]), { ...switchOpts, force: true }));
    expect(p.warnings).toEqual([]);
    expect(p.record.forced).toBeUndefined();
    expect((p.activeService.patch.metadata as { annotations: Record<string, unknown> }).annotations[FORCE_SWITCH_ANNOTATION]).toBeNull();
  });

  it('rollback goes back to the colour of the last switch', () => {
    const last: SwitchRecord = { kind: 'switch', from: 'green', to: 'blue', at: '2030-01-01T00:00:00.000Z' };
    const p = ok(planSwitch(viewOf([blue, green], [annotated(svc, { [HISTORY_ANNOTATION]: JSON.stringify([last]) })]), { kind: 'rollback', now: NOW }));
    expect(p.from).toBe('blue');
    expect(p.to).toBe('green');
    expect(p.record.kind).toBe('rollback');
  });

  it('rollback with no history goes to the other colour', () => {
    const p = ok(planSwitch(viewOf([blue, green], [svc]), { kind: 'rollback', now: NOW }));
    expect(p.to).toBe('green');
  });

  it('the readiness bar is the live count: a smaller target is not ready', () => {
    const big = deployment({ colour: 'blue', replicas: 5 });
    expect(refused(planSwitch(viewOf([big, green], [svc]), switchOpts)).reason).toBe(
      'cannot switch shop to green: shop-green is scaled to 2 replicas, fewer than the 5 the live colour runs',
    );
  });

  it('green live: switch goes to blue, preview to green', () => {
    const pv = service({ name: 'p', role: 'preview', colour: 'blue' });
    const p = ok(planSwitch(viewOf([blue, green], [selecting(svc, 'green'), pv]), switchOpts));
    expect([p.from, p.to]).toEqual(['green', 'blue']);
    expect(p.previews[0]!.patch).toEqual({ spec: { selector: { slot: 'green' } } });
    expect(p.record.images).toEqual([`app=${IMAGE_V1}`]);
  });
});

describe('scale-down delay', () => {
  it.each([
    { name: 'default', annotation: undefined, seconds: 600, warnings: [] },
    { name: '90s', annotation: '90s', seconds: 90, warnings: [] },
    { name: '1h', annotation: '1h', seconds: 3600, warnings: [] },
    { name: '0s (scale down at once)', annotation: '0s', seconds: 0, warnings: [] },
    { name: '0', annotation: '0', seconds: 0, warnings: [] },
    {
      name: 'not a duration',
      annotation: 'soon',
      seconds: 600,
      warnings: ['bluegreen.io/scale-down-delay=soon is not a duration (e.g. 10m, 90s, 0); using 600s'],
    },
  ])('$name -> $seconds s', ({ annotation, seconds, warnings }) => {
    const s = annotation === undefined ? svc : annotated(svc, { [SCALE_DOWN_DELAY_ANNOTATION]: annotation });
    const view = viewOf([blue, green], [s]);
    expect(scaleDownDelaySeconds(view)).toEqual(warnings.length ? { seconds, warning: warnings[0] } : { seconds });
    const p = ok(planSwitch(view, switchOpts));
    expect(p.scaleDownAt).toBe(plus(seconds));
    expect((p.activeService.patch.metadata as { annotations: Record<string, unknown> }).annotations[SCALE_DOWN_AT_ANNOTATION]).toBe(plus(seconds));
    expect(p.warnings).toEqual(warnings);
  });
});
