// planReconcile: what the reconciler does next for one app, from a (fresh) view.
import fjp from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import type { Deployment } from '../../../src/core/k8s-types.ts';
import { appendHistory } from '../../../src/core/history.ts';
import { HISTORY_ANNOTATION, LAST_CHANGE_ANNOTATION, LIVE_LABEL, PENDING_CHANGE_ANNOTATION, SCALE_DOWN_AT_ANNOTATION } from '../../../src/core/labels.ts';
import type { PendingFields } from '../../../src/core/pending-change.ts';
import { planReconcile, type ReconcileAction, STALE_LIVE_GRACE_MS } from '../../../src/core/reconcile.ts';
import { templateHash } from '../../../src/core/template.ts';
import { annotated, deployment, edit, IMAGE_V1, IMAGE_V2, NOW, SEAL, sealedRecord, selecting, shop, viewOf, withImage, withReplicas } from './builders.ts';

const NONE = new Map<string, number>();
const plan = (view: ReturnType<typeof viewOf>, staleLiveSince = NONE, now = NOW) => planReconcile({ view, seal: SEAL, now, staleLiveSince });
const labelled = (d: Deployment, live: string) => edit(d, (c) => (c.metadata.labels![LIVE_LABEL] = live));

/** The pending-change record of a set image to v2 on blue (live), sealed, with both colours' bases. */
function record(blue: Deployment, green: Deployment, o: Partial<PendingFields> = {}): string {
  return sealedRecord(blue, { bases: { blue: templateHash(blue.spec!.template, 'slot'), green: templateHash(green.spec!.template, 'slot') }, ...o });
}

function applied<T>(obj: T, ops: unknown[]): T {
  return fjp.applyPatch(structuredClone(obj), ops as fjp.Operation[], true, false).newDocument;
}

type Change = Extract<ReconcileAction, { kind: 'change' }>;
const outcomeOn = (d: Deployment) => JSON.parse(d.metadata.annotations![LAST_CHANGE_ANNOTATION]!);

describe('planReconcile: a recorded change', () => {
  const s = shop();
  const blue = labelled(s.blue, 'true');
  const green = labelled(s.green, 'false');

  it('goes to the idle colour in one patch: its template with its own slot label and the outcome, guarded by generation and colour; the live colour is not written', () => {
    const holder = annotated(blue, { [PENDING_CHANGE_ANNOTATION]: record(blue, green) });
    const a = plan(viewOf([holder, green], [s.svc])).action as Change;
    expect(a).toMatchObject({ kind: 'change', holder: 'shop-blue', target: 'shop-green', targetColour: 'green', outcome: 'applied' });
    expect(a.ops.slice(0, 2)).toEqual([
      { op: 'test', path: '/metadata/generation', value: green.metadata.generation },
      { op: 'test', path: '/spec/template/metadata/labels/slot', value: 'green' },
    ]);
    const after = applied(green, a.ops);
    expect(after.spec!.template).toEqual(withImage(green, IMAGE_V2).spec!.template);
    expect(outcomeOn(after)).toEqual({
      request: 'r-1',
      from: 'shop-blue',
      by: 'alice',
      at: NOW.toISOString(),
      summary: 'image change',
      images: ['app=registry.example/shop:v2'],
      hash: templateHash(withImage(blue, IMAGE_V2).spec!.template, 'slot'),
      applied: true,
      settledAt: NOW.toISOString(),
    });
  });

  it("the idle colour carries an earlier recorded change the record's bases did not know of yet (a stale cache): the newer record wins", () => {
    const first = annotated(blue, { [PENDING_CHANGE_ANNOTATION]: record(blue, green, { request: 'r-0' }) });
    const a0 = plan(viewOf([first, green], [s.svc])).action as Change;
    const greenWithFirst = applied(green, a0.ops);
    // The second change was recorded with bases from before the first reached green.
    const v3 = withImage(blue, 'registry.example/shop:v3').spec!.template!;
    const second = annotated(blue, { [PENDING_CHANGE_ANNOTATION]: record(blue, green, { request: 'r-1', template: v3, hash: templateHash(v3, 'slot') }) });
    const a1 = plan(viewOf([second, greenWithFirst], [s.svc])).action as Change;
    expect(a1).toMatchObject({ kind: 'change', outcome: 'applied' });
    expect(applied(greenWithFirst, a1.ops).spec!.template!.spec!.containers![0]!.image).toBe('registry.example/shop:v3');
  });

  it('once settled (the outcome names its request), the record is left alone: nothing to do', () => {
    const holder = annotated(blue, { [PENDING_CHANGE_ANNOTATION]: record(blue, green) });
    const a = plan(viewOf([holder, green], [s.svc])).action as Change;
    expect(plan(viewOf([holder, applied(green, a.ops)], [s.svc]))).toEqual({ staleLive: [] });
  });

  it('an older record whose outcome was lost (rollout undo copies old annotations back) is settled by a newer outcome: no ping-pong', () => {
    const older = annotated(labelled(blue, 'false'), {
      [PENDING_CHANGE_ANNOTATION]: record(blue, green, { request: 'old', at: new Date(NOW.getTime() - 60_000).toISOString() }),
    });
    const newerOnGreen = annotated(labelled(green, 'true'), {
      [PENDING_CHANGE_ANNOTATION]: record(blue, green, { deployment: green.metadata.uid ?? '', request: 'new', from: 'green', to: 'blue' }),
    });
    const v = viewOf([older, newerOnGreen], [selecting(s.svc, 'green')]);
    const a = plan(v).action as Change;
    expect(a.record.request).toBe('new');
    const blueAfter = applied(older, a.ops);
    expect(plan(viewOf([blueAfter, newerOnGreen], [selecting(s.svc, 'green')]))).toEqual({ staleLive: [] });
  });

  it('raises the idle colour to the live count, read now', () => {
    const live = withReplicas(blue, 4);
    const idle = withReplicas(green, 1);
    const holder = annotated(live, { [PENDING_CHANGE_ANNOTATION]: record(live, idle, { minReplicas: 2 }) });
    const a = plan(viewOf([holder, idle], [s.svc])).action as Change;
    expect(a.ops).toContainEqual({ op: 'replace', path: '/spec/replicas', value: 4 });
  });

  it('after a switch raced it, goes to whichever colour is idle now: the holder itself', () => {
    const holder = annotated(labelled(blue, 'false'), { [PENDING_CHANGE_ANNOTATION]: record(blue, green) });
    const a = plan(viewOf([holder, labelled(green, 'true')], [selecting(s.svc, 'green')])).action as Change;
    expect(a).toMatchObject({ kind: 'change', holder: 'shop-blue', target: 'shop-blue', targetColour: 'blue', outcome: 'applied' });
    const after = applied(holder, a.ops);
    expect(after.spec!.template!.spec!.containers![0]!.image).toBe(IMAGE_V2);
    expect(after.spec!.template!.metadata!.labels!.slot).toBe('blue');
    expect(outcomeOn(after).request).toBe('r-1');
  });

  it('the colour to take it is still labelled live (the Service left it a moment ago): its label first, then the change', () => {
    const holder = annotated(blue, { [PENDING_CHANGE_ANNOTATION]: record(blue, green) });
    const p = plan(viewOf([holder, labelled(green, 'true')], [s.svc]), new Map([['shop-green', NOW.getTime() - 10_000]]));
    expect(p.action).toMatchObject({ kind: 'label', deployment: 'shop-green', value: 'false' });
  });

  it('already on the idle colour: only the outcome is written', () => {
    const onGreen = withImage(green, IMAGE_V2);
    const holder = annotated(blue, { [PENDING_CHANGE_ANNOTATION]: record(blue, green) });
    const a = plan(viewOf([holder, onGreen], [s.svc])).action as Change;
    expect(a).toMatchObject({ kind: 'change', target: 'shop-green', outcome: 'already' });
    expect(applied(onGreen, a.ops).spec).toEqual(onGreen.spec);
  });

  it('the idle colour changed since the record (a newer change): the older one is not applied over it, and says why', () => {
    const newer = withImage(green, 'registry.example/shop:v9');
    const holder = annotated(blue, { [PENDING_CHANGE_ANNOTATION]: record(blue, green) });
    const a = plan(viewOf([holder, newer], [s.svc])).action as Change;
    expect(a).toMatchObject({
      kind: 'change',
      holder: 'shop-blue',
      target: 'shop-green',
      outcome: 'not-applied',
      reason: 'shop-green was changed after this change was recorded; the newer change stays',
    });
    const after = applied(newer, a.ops);
    expect(after.spec).toEqual(newer.spec);
    expect(outcomeOn(after)).toMatchObject({
      applied: false,
      by: 'alice',
      request: 'r-1',
      images: ['app=registry.example/shop:v2'],
      reason: 'shop-green was changed after this change was recorded; the newer change stays',
    });
  });

  it.each([
    { name: 'not sealed by this webhook', value: JSON.stringify({ v: 1, template: {}, from: 'blue', to: 'green' }) },
    { name: 'sealed for another Deployment', value: '' },
    { name: 'not JSON', value: '{' },
  ])('a record $name is removed as not written by kube-bluegreen, nothing applied', ({ name, value }) => {
    const v = name === 'sealed for another Deployment' ? record(blue, green, { deployment: 'other-uid' }) : value;
    const holder = annotated(blue, { [PENDING_CHANGE_ANNOTATION]: v });
    const a = plan(viewOf([holder, green], [s.svc])).action as Extract<ReconcileAction, { kind: 'drop-planted' }>;
    expect(a.kind).toBe('drop-planted');
    expect(a.reason).toBe('annotation bluegreen.io/pending-change on shop-blue was not written by kube-bluegreen for this Deployment; ignored and removed');
    expect(applied(holder, a.ops).metadata.annotations![PENDING_CHANGE_ANNOTATION]).toBeUndefined();
  });

  it('no idle Deployment: not applied, the outcome on the holder says why', () => {
    const holder = annotated(blue, { [PENDING_CHANGE_ANNOTATION]: record(blue, green) });
    const a = plan(viewOf([holder], [s.svc])).action as Change;
    expect(a).toMatchObject({ kind: 'change', target: 'shop-blue', outcome: 'not-applied', reason: 'app shop has no green Deployment to take it' });
    expect(applied(holder, a.ops).spec).toEqual(holder.spec);
  });

  it('no single active Service: waits (which colour is idle cannot be told), and looks again', () => {
    const holder = annotated(blue, { [PENDING_CHANGE_ANNOTATION]: record(blue, green) });
    const p = plan(viewOf([holder, green], []));
    expect(p.action).toBeUndefined();
    expect(p.recheckMs).toBe(2000);
  });

  it('records on both colours (a raced switch): the newest first', () => {
    const older = annotated(labelled(blue, 'false'), {
      [PENDING_CHANGE_ANNOTATION]: record(blue, green, { at: new Date(NOW.getTime() - 5000).toISOString() }),
    });
    const newerOnGreen = annotated(labelled(green, 'true'), {
      [PENDING_CHANGE_ANNOTATION]: record(blue, green, {
        deployment: green.metadata.uid ?? '',
        request: 'r-2',
        at: NOW.toISOString(),
        from: 'green',
        to: 'blue',
      }),
    });
    expect(plan(viewOf([older, newerOnGreen], [selecting(s.svc, 'green')])).action).toMatchObject({ holder: 'shop-green' });
  });
});

describe('planReconcile: the live labels follow the active Service', () => {
  const s = shop();
  it.each([
    { name: 'both missing (an app not made by init)', blue: undefined, green: undefined, want: { deployment: 'shop-blue', value: 'true' } },
    {
      name: 'a raw selector switch: green selected, still labelled false',
      blue: 'true',
      green: 'false',
      svc: 'green',
      want: { deployment: 'shop-green', value: 'true' },
    },
    { name: 'idle label missing', blue: 'true', green: undefined, want: { deployment: 'shop-green', value: 'false' } },
    { name: 'an odd value', blue: 'yes', green: 'false', want: { deployment: 'shop-blue', value: 'true' } },
  ])('$name -> $want.deployment = $want.value', ({ blue, green, svc, want }) => {
    const b = blue === undefined ? s.blue : labelled(s.blue, blue);
    const g = green === undefined ? edit(s.green, (c) => delete c.metadata.labels![LIVE_LABEL]) : labelled(s.green, green);
    const bb = blue === undefined ? edit(b, (c) => delete c.metadata.labels![LIVE_LABEL]) : b;
    const a = plan(viewOf([bb, g], [svc ? selecting(s.svc, svc) : s.svc])).action;
    expect(a).toEqual({ kind: 'label', deployment: want.deployment, value: want.value, patch: { metadata: { labels: { [LIVE_LABEL]: want.value } } } });
  });

  it('consistent: nothing to do', () => {
    expect(plan(viewOf([labelled(s.blue, 'true'), labelled(s.green, 'false')], [s.svc]))).toEqual({ staleLive: [] });
  });

  it('the colour the Service left still labelled true: false only after the grace (a switch labels first, then flips)', () => {
    const v = viewOf([labelled(s.blue, 'true'), labelled(s.green, 'true')], [s.svc]);
    const first = plan(v);
    expect(first.action).toBeUndefined();
    expect(first.staleLive).toEqual(['shop-green']);
    expect(first.recheckMs).toBe(STALE_LIVE_GRACE_MS);
    const seen = new Map([['shop-green', NOW.getTime() - 400]]);
    expect(plan(v, seen).recheckMs).toBe(STALE_LIVE_GRACE_MS - 400);
    const due = plan(v, new Map([['shop-green', NOW.getTime() - STALE_LIVE_GRACE_MS]]));
    expect(due.action).toMatchObject({ kind: 'label', deployment: 'shop-green', value: 'false' });
  });
});

describe('planReconcile: the scale-down after a switch', () => {
  const s = shop();
  // A switch green -> blue recorded in the history, with green's template and generation then.
  const history = appendHistory([], {
    kind: 'switch',
    from: 'green',
    to: 'blue',
    at: NOW.toISOString(),
    fromTemplate: templateHash(s.green.spec!.template, 'slot'),
    fromGeneration: s.green.metadata.generation!,
  });
  const due = (at: Date) => annotated(s.svc, { [SCALE_DOWN_AT_ANNOTATION]: at.toISOString(), [HISTORY_ANNOTATION]: history });
  const past = new Date(NOW.getTime() - 1000);

  it('the idle colour, due and labelled false: scaled to 0 with its resourceVersion and label as preconditions', () => {
    const v = viewOf([labelled(s.blue, 'true'), labelled(s.green, 'false')], [due(past)]);
    const a = plan(v).action as Extract<ReconcileAction, { kind: 'scale-down' }>;
    expect(a.kind).toBe('scale-down');
    expect(a.deployment).toBe('shop-green');
    expect(a.ops).toEqual([
      { op: 'test', path: '/metadata/resourceVersion', value: v.deployments.green!.metadata.resourceVersion },
      { op: 'test', path: '/metadata/labels/bluegreen.io~1live', value: 'false' },
      { op: 'replace', path: '/spec/replicas', value: 0 },
    ]);
    expect(a.servicePatch).toEqual({ metadata: { resourceVersion: v.active!.metadata.resourceVersion, annotations: { [SCALE_DOWN_AT_ANNOTATION]: null } } });
  });

  it('a stale snapshot: the Service now selects green (a rollback), so green is live and never scaled down', () => {
    // The cache thought blue live and green due; the fresh read shows the rollback to green.
    const fresh = viewOf([labelled(s.blue, 'false'), labelled(s.green, 'true')], [selecting(due(past), 'green')]);
    const a = plan(fresh).action;
    expect(a?.kind === 'scale-down' ? a.deployment : undefined).not.toBe('shop-green');
  });

  it('labelled live (a switch to it under way): never scaled down, whatever the Service says', () => {
    const v = viewOf([labelled(s.blue, 'true'), labelled(s.green, 'true')], [due(past)]);
    expect(plan(v).action).toBeUndefined();
  });

  it('not due yet: nothing now, a look again when it is', () => {
    const v = viewOf([labelled(s.blue, 'true'), labelled(s.green, 'false')], [due(new Date(NOW.getTime() + 60_000))]);
    const p = plan(v);
    expect(p.action).toBeUndefined();
    expect(p.recheckMs).toBe(60_050);
  });

  it('changed since the switch (a new rollout on it): the schedule is cleared, nothing scaled', () => {
    const v = viewOf([labelled(s.blue, 'true'), labelled(withImage(s.green, IMAGE_V1 + '-new'), 'false')], [due(past)]);
    expect(plan(v).action).toMatchObject({ kind: 'clear-scale-down', service: 'shop' });
  });

  it('recorded changes come first, then labels, then the scale-down', () => {
    const holder = annotated(labelled(s.blue, 'true'), { [PENDING_CHANGE_ANNOTATION]: record(s.blue, s.green) });
    expect(plan(viewOf([holder, s.green], [due(past)])).action?.kind).toBe('change');
    expect(deployment({ colour: 'green' }).metadata.name).toBe('shop-green');
  });
});
