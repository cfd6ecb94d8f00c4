// One HPA per app, following the live colour (src/core/hpa.ts): retargeted after a switch, the idle
// colour kept at the live colour's replicas while it is prepared, never written where Git declares
// it, and an HPA on the idle colour reported instead of fought.
import { describe, expect, it } from 'vitest';
import type { AppView } from '../../../src/core/app.ts';
import { type HpaPlan, hpaStatuses, planHpa } from '../../../src/core/hpa.ts';
import type { Deployment, HorizontalPodAutoscaler } from '../../../src/core/k8s-types.ts';
import { HISTORY_ANNOTATION, LIVE_LABEL, RAISED_GENERATION_ANNOTATION, SCALE_DOWN_AT_ANNOTATION } from '../../../src/core/labels.ts';
import { planReconcile } from '../../../src/core/reconcile.ts';
import { scaleDownDue, whyOldColourStays } from '../../../src/core/scale-down.ts';
import { templateHash } from '../../../src/core/template.ts';
import { annotated, deployment, edit, hpa, IMAGE_V2, NOW, SEAL, selecting, service, viewOf, withReplicas } from './builders.ts';

const svc = service({ role: 'active', resourceVersion: '77' });
const blue = deployment({ colour: 'blue', replicas: 5, live: true, resourceVersion: '101' });
const green = deployment({ colour: 'green', replicas: 2, image: IMAGE_V2, live: false, resourceVersion: '102' });
const onBlue = hpa({ target: 'shop-blue', current: 5 });
const onGreen = hpa({ name: 'shop-green', target: 'shop-green' });
const view = (deployments: Deployment[], hpas: HorizontalPodAutoscaler[], s = svc) => viewOf(deployments, [s], { hpas });
// After a switch to green: green live, blue idle and still scaled by the HPA.
const greenLive = withReplicas(
  edit(green, (d) => (d.metadata.labels![LIVE_LABEL] = 'true')),
  5,
);
const blueIdle = edit(blue, (d) => (d.metadata.labels![LIVE_LABEL] = 'false'));
const switched = selecting(svc, 'green');
const ARGO = { 'argocd.argoproj.io/tracking-id': 'shop:apps/Deployment:prod/shop-blue' };

describe('planHpa', () => {
  it.each<{ name: string; view: AppView; want: HpaPlan }>([
    { name: 'no HPA: nothing', view: view([blue, green], []), want: {} },
    {
      name: 'the HPA scales the live colour up while the idle colour is prepared: the idle colour is raised to the same count',
      view: view([blue, green], [onBlue]),
      want: {
        action: {
          kind: 'keep-idle-capacity',
          deployment: 'shop-green',
          hpa: 'shop',
          from: 2,
          to: 5,
          ops: [
            { op: 'test', path: '/metadata/resourceVersion', value: '102' },
            { op: 'test', path: '/metadata/labels/bluegreen.io~1live', value: 'false' },
            { op: 'replace', path: '/spec/replicas', value: 5 },
            { op: 'add', path: '/metadata/annotations', value: {} },
            { op: 'add', path: '/metadata/annotations/bluegreen.io~1raised-generation', value: '2' },
          ],
        },
      },
    },
    { name: 'the idle colour already runs as many: nothing', view: view([blue, withReplicas(green, 5)], [onBlue]), want: {} },
    { name: 'the idle colour runs more than the live one: never lowered', view: view([blue, withReplicas(green, 7)], [onBlue]), want: {} },
    { name: 'the idle colour is scaled down (nothing to prepare): left at 0', view: view([blue, withReplicas(green, 0)], [onBlue]), want: {} },
    {
      name: 'the idle colour is still labelled live (a switch in progress): wait for the label',
      view: view([blue, edit(green, (d) => (d.metadata.labels![LIVE_LABEL] = 'true'))], [onBlue]),
      want: {},
    },
    {
      name: 'an app from Git: the idle colour is not scaled behind Git; say what to do',
      view: view([blue, green], [onBlue], annotated(svc, ARGO)),
      want: {
        warning:
          'shop-green runs 2 replicas, fewer than the 5 HorizontalPodAutoscaler shop runs shop-blue at, and app shop is deployed from Git by Argo CD (application shop, annotation argocd.argoproj.io/tracking-id): ' +
          'kube-bluegreen does not scale it; raise its replicas there, or a switch to green is refused until it has 5 available',
      },
    },
    {
      name: 'after a switch the HPA still scales the old colour: it is pointed at the live one, guarded by its resourceVersion and target',
      view: view([blueIdle, greenLive], [onBlue], switched),
      want: {
        action: {
          kind: 'retarget-hpa',
          hpa: 'shop',
          from: 'shop-blue',
          to: 'shop-green',
          ops: [
            { op: 'test', path: '/metadata/resourceVersion', value: '300' },
            { op: 'test', path: '/spec/scaleTargetRef/name', value: 'shop-blue' },
            { op: 'replace', path: '/spec/scaleTargetRef/name', value: 'shop-green' },
          ],
        },
      },
    },
    {
      name: 'after a switch, an HPA that Argo CD declares: not written; the Git edit is named',
      view: view([blueIdle, greenLive], [hpa({ target: 'shop-blue', annotations: ARGO })], switched),
      want: {
        warning:
          'HorizontalPodAutoscaler shop scales shop-blue, the idle colour, and is deployed from Git by Argo CD (application shop, annotation argocd.argoproj.io/tracking-id): kube-bluegreen writes nothing declared there. ' +
          'Set its scaleTargetRef.name to shop-green there, in the change that switches to green',
      },
    },
    {
      name: 'after a switch, an HPA a Helm release installed: not written either',
      view: view([blueIdle, greenLive], [hpa({ target: 'shop-blue', annotations: { 'meta.helm.sh/release-name': 'shop' } })], switched),
      want: {
        warning:
          'HorizontalPodAutoscaler shop scales shop-blue, the idle colour, and is declared by Helm release prod/shop: kube-bluegreen writes nothing declared there. ' +
          'Set its scaleTargetRef.name to shop-green there, in the change that switches to green',
      },
    },
    {
      name: 'after a switch, an unmarked HPA of an app in GitOps mode: taken as declared with the app; not written',
      view: view([blueIdle, greenLive], [onBlue], annotated(switched, { 'bluegreen.io/gitops': 'true' })),
      want: {
        warning:
          'HorizontalPodAutoscaler shop scales shop-blue, the idle colour, and is of app shop, which is deployed from Git by bluegreen.io/gitops=true on Service shop: kube-bluegreen writes nothing declared there. ' +
          'Set its scaleTargetRef.name to shop-green there, in the change that switches to green',
      },
    },
    {
      name: 'one HPA per colour: not supported; nothing retargeted or raised, and the one on the idle colour named',
      view: view([blue, green], [onBlue, onGreen]),
      want: {
        warning:
          'app shop has 2 HorizontalPodAutoscalers on its colours (shop scales shop-blue, shop-green scales shop-green); kube-bluegreen supports one, which follows the live colour and is retargeted at each switch: ' +
          'delete shop-green (an HPA on the idle colour scales it on its own load, none before the switch, back to its minimum). Until then it neither retargets them nor scales a colour they scale',
      },
    },
    {
      name: 'an HPA labelled for the app that scales something else: left alone, said once; the app’s own HPA still followed',
      view: view([blue, withReplicas(green, 5)], [onBlue, hpa({ name: 'worker', target: 'shop-worker' })]),
      want: {
        warning:
          'HorizontalPodAutoscaler worker (label bluegreen.io/app=shop) scales Deployment/shop-worker, which is not a colour of app shop; kube-bluegreen leaves it alone',
      },
    },
    { name: 'no active Service (the live colour cannot be told): nothing', view: viewOf([blue, green], [], { hpas: [onBlue] }), want: {} },
  ])('$name', ({ view, want }) => {
    expect(planHpa(view)).toEqual(want);
  });
});

describe('planHpa: a stray HPA beside the app’s own', () => {
  it('is said alongside what is done for the app’s own HPA (one Event, not one per pass)', () => {
    const p = planHpa(view([blue, green], [onBlue, hpa({ name: 'worker', target: 'shop-worker' })]));
    expect(p.action).toMatchObject({ kind: 'keep-idle-capacity', deployment: 'shop-green', to: 5 });
    expect(p.warning).toMatch(/^HorizontalPodAutoscaler worker \(label bluegreen.io\/app=shop\) scales Deployment\/shop-worker/);
  });
});

describe('the scale-down after a switch never scales what an HPA scales', () => {
  const history = JSON.stringify([
    { kind: 'switch', from: 'blue', to: 'green', at: NOW.toISOString(), fromTemplate: templateHash(blue.spec!.template, 'slot'), fromGeneration: 1 },
  ]);
  const due = annotated(switched, { [HISTORY_ANNOTATION]: history, [SCALE_DOWN_AT_ANNOTATION]: new Date(NOW.getTime() - 1000).toISOString() });

  it('an HPA still on the old colour: the scale-down is dropped with the reason', () => {
    const v = view([blueIdle, greenLive], [onBlue, onGreen], due);
    expect(whyOldColourStays(v)).toBe(
      'HorizontalPodAutoscaler shop scales shop-blue; kube-bluegreen does not scale down a Deployment an HPA scales (point the HPA at the live colour, or delete it, then scale shop-blue to 0)',
    );
    expect(scaleDownDue(v, NOW)).toMatchObject({ kind: 'clear' });
  });

  it('the reconciler points the HPA at the live colour first, then scales the old colour down', () => {
    const before = planReconcile({ view: view([blueIdle, greenLive], [onBlue], due), seal: SEAL, now: NOW, staleLiveSince: new Map() });
    expect(before.action).toMatchObject({ kind: 'retarget-hpa', from: 'shop-blue', to: 'shop-green' });
    const retargeted = hpa({ target: 'shop-green', current: 5 });
    const after = planReconcile({ view: view([blueIdle, greenLive], [retargeted], due), seal: SEAL, now: NOW, staleLiveSince: new Map() });
    expect(after.action).toMatchObject({ kind: 'scale-down', deployment: 'shop-blue' });
  });

  it('while the old colour is warm, it is raised with the live colour (a rollback finds it at the live count), and still scaled down when due', () => {
    const warmUntil = (t: number) => annotated(switched, { [HISTORY_ANNOTATION]: history, [SCALE_DOWN_AT_ANNOTATION]: new Date(t).toISOString() });
    const live = withReplicas(greenLive, 6);
    const follower = [hpa({ target: 'shop-green', current: 6 })];
    const p = planReconcile({
      view: view([withReplicas(blueIdle, 5), live], follower, warmUntil(NOW.getTime() + 60_000)),
      seal: SEAL,
      now: NOW,
      staleLiveSince: new Map(),
    });
    expect(p.action).toMatchObject({ kind: 'keep-idle-capacity', deployment: 'shop-blue', from: 5, to: 6 });
    // As the API server stores that patch: replicas 6, generation 2, the annotation naming generation 2.
    const raised = edit(withReplicas(blueIdle, 6), (d) => {
      d.metadata.generation = 2;
      d.metadata.annotations = { [RAISED_GENERATION_ANNOTATION]: '2' };
    });
    expect(whyOldColourStays(view([raised, live], follower, warmUntil(NOW.getTime() - 1)))).toBeUndefined();
    const due = planReconcile({ view: view([raised, live], follower, warmUntil(NOW.getTime() - 1)), seal: SEAL, now: NOW, staleLiveSince: new Map() });
    expect(due.action).toMatchObject({ kind: 'scale-down', deployment: 'shop-blue' });
    // Scaled by hand after the raise (generation 3): a change by hand, left as it is.
    const byHand = edit(raised, (d) => (d.metadata.generation = 3));
    expect(whyOldColourStays(view([byHand, live], follower, warmUntil(NOW.getTime() - 1)))).toMatch(
      /^shop-blue was changed since the switch \(generation 1 -> 3/,
    );
  });

  it('the reconciler’s plan carries the HPA warning, for an Event', () => {
    const p = planReconcile({ view: view([blue, green], [onBlue, onGreen]), seal: SEAL, now: NOW, staleLiveSince: new Map() });
    expect(p.action).toBeUndefined();
    expect(p.hpaWarning).toMatch(/^app shop has 2 HorizontalPodAutoscalers on its colours/);
  });
});

describe('hpaStatuses', () => {
  it('which colour each HPA scales, and whether that is the live one', () => {
    expect(hpaStatuses(view([blue, green], [onBlue, hpa({ name: 'worker', target: 'shop-worker', max: 3 })]))).toEqual([
      { name: 'shop', target: 'shop-blue', colour: 'blue', follows: 'live', minReplicas: 2, maxReplicas: 10, currentReplicas: 5, desiredReplicas: 5 },
      { name: 'worker', target: 'shop-worker', colour: null, follows: null, minReplicas: 2, maxReplicas: 3, currentReplicas: 2, desiredReplicas: 2 },
    ]);
  });
});
