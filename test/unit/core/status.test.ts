import { describe, expect, it } from 'vitest';
import type { AppView } from '../../../src/core/app.ts';
import type { SwitchRecord } from '../../../src/core/history.ts';
import type { Deployment } from '../../../src/core/k8s-types.ts';
import { HISTORY_ANNOTATION, SCALE_DOWN_AT_ANNOTATION } from '../../../src/core/labels.ts';
import { appStatus } from '../../../src/core/status.ts';
import { templateHash } from '../../../src/core/template.ts';
import { annotated, deployment, edit, IMAGE_V1, IMAGE_V2, selecting, service, viewOf } from './builders.ts';

const blue = deployment({ colour: 'blue' });
const greenSame = deployment({ colour: 'green' });
const greenOld = deployment({ colour: 'green', image: 'registry.example/shop:v0' });
const greenNew = deployment({ colour: 'green', image: IMAGE_V2 });
const svc = service({ role: 'active' });

/** History whose last switch was from green (running `green`'s template then) to blue. */
function switchedFrom(green: Deployment): Record<string, string> {
  const last: SwitchRecord = {
    kind: 'switch',
    from: 'green',
    to: 'blue',
    at: '2030-01-01T00:00:00.000Z',
    fromTemplate: templateHash(green.spec!.template, 'slot'),
    fromGeneration: green.metadata.generation!,
    toTemplate: templateHash(blue.spec!.template, 'slot'),
  };
  return { [HISTORY_ANNOTATION]: JSON.stringify([last]) };
}

describe('appStatus: phase and message', () => {
  it.each<{ name: string; view: AppView; phase: string; message: string }>([
    {
      name: 'stable: both colours run the same template',
      view: viewOf([blue, greenSame], [svc]),
      phase: 'stable',
      message: 'green runs the same version as blue',
    },
    {
      name: 'stable: the previous version kept warm after a switch',
      view: viewOf([blue, greenOld], [annotated(svc, switchedFrom(greenOld))]),
      phase: 'stable',
      message: "green keeps the previous version warm; 'kubectl bg rollback shop -n prod' switches back at once",
    },
    {
      name: 'stable: the previous version, scaled down',
      view: viewOf([blue, withZero(greenOld)], [annotated(svc, switchedFrom(greenOld))]),
      phase: 'stable',
      message: "green holds the previous version, scaled down; 'kubectl bg rollback shop -n prod' scales it up and switches back",
    },
    {
      name: 'stable: idle scaled down running something else',
      view: viewOf([blue, withZero(greenNew)], [svc]),
      phase: 'stable',
      message: 'green is scaled down',
    },
    {
      name: 'stable: no idle Deployment',
      view: viewOf([blue], [svc]),
      phase: 'stable',
      message: "no green Deployment; run 'kubectl bg init shop -n prod' to create it",
    },
    {
      name: 'idle rolling out: a new version not yet available',
      view: viewOf(
        [blue, deployment({ colour: 'green', image: IMAGE_V2, status: { observedGeneration: 1, replicas: 2, updatedReplicas: 1, availableReplicas: 1 } })],
        [svc],
      ),
      phase: 'idle-rolling-out',
      message: 'shop-green is still rolling out (1 of 2 pods updated, 2 running)',
    },
    {
      name: 'idle rolling out: fewer replicas than live',
      view: viewOf([deployment({ colour: 'blue', replicas: 4 }), greenNew], [svc]),
      phase: 'idle-rolling-out',
      message: 'shop-green is scaled to 2 replicas, fewer than the 4 the live colour runs',
    },
    {
      name: 'idle whose template changed since the switch is not "the previous version"',
      view: viewOf([blue, greenNew], [annotated(svc, switchedFrom(greenOld))]),
      phase: 'ready-to-switch',
      message: "green is rolled out and available; run 'kubectl bg switch shop -n prod'",
    },
    {
      name: 'ready to switch',
      view: viewOf([blue, greenNew], [svc]),
      phase: 'ready-to-switch',
      message: "green is rolled out and available; run 'kubectl bg switch shop -n prod'",
    },
    {
      name: 'degraded: no Service',
      view: viewOf([blue, greenSame], []),
      phase: 'degraded',
      message: 'app shop has no Service',
    },
    {
      name: 'degraded: ambiguous Services',
      view: viewOf([blue, greenSame], [service({ name: 'a' }), service({ name: 'b' })]),
      phase: 'degraded',
      message: "app shop has 2 Services (a, b) and none is annotated bluegreen.io/role=active; run 'kubectl annotate service a bluegreen.io/role=active'",
    },
    {
      name: 'degraded: the active Service selects no colour',
      view: viewOf([blue, greenSame], [selecting(svc, null)]),
      phase: 'degraded',
      message: 'Service shop selects no slot label; it should select slot=blue or slot=green',
    },
    {
      name: 'degraded: the live Deployment is missing',
      view: viewOf([greenSame], [svc]),
      phase: 'degraded',
      message: 'the active Service selects blue, but app shop has no blue Deployment',
    },
    {
      name: 'degraded: the live colour is not available',
      view: viewOf(
        [deployment({ colour: 'blue', status: { observedGeneration: 1, replicas: 2, updatedReplicas: 2, availableReplicas: 1 } }), greenSame],
        [svc],
      ),
      phase: 'degraded',
      message: 'live colour blue: shop-blue has 1/2 available replicas',
    },
    {
      name: 'degraded: the live colour is paused',
      view: viewOf([deployment({ colour: 'blue', paused: true }), greenSame], [svc]),
      phase: 'degraded',
      message: 'live colour blue: shop-blue is paused',
    },
  ])('$name', ({ view, phase, message }) => {
    const s = appStatus(view);
    expect({ phase: s.phase, message: s.message }).toEqual({ phase, message });
  });
});

function withZero(d: Deployment): Deployment {
  return edit(d, (c) => {
    c.spec!.replicas = 0;
    c.status = { observedGeneration: 1, replicas: 0, updatedReplicas: 0, readyReplicas: 0, availableReplicas: 0 };
  });
}

describe('appStatus: the whole view model', () => {
  it('a stable app after a switch, with a preview and a scale-down time', () => {
    const preview = service({ name: 'shop-preview', role: 'preview', colour: 'green' });
    const active = annotated(svc, { ...switchedFrom(greenOld), [SCALE_DOWN_AT_ANNOTATION]: '2030-01-01T00:10:00.000Z' });
    const s = appStatus(viewOf([blue, greenOld], [active, preview]));
    expect(s).toEqual({
      app: 'shop',
      namespace: 'prod',
      slotLabel: 'slot',
      activeService: 'shop',
      previewServices: ['shop-preview'],
      live: 'blue',
      idle: 'green',
      phase: 'stable',
      message: "green keeps the previous version warm; 'kubectl bg rollback shop -n prod' switches back at once",
      colours: [
        {
          colour: 'blue',
          deployment: 'shop-blue',
          role: 'live',
          images: [`app=${IMAGE_V1}`],
          desired: 2,
          ready: 2,
          available: 2,
          updated: 2,
          template: templateHash(blue.spec!.template, 'slot'),
        },
        {
          colour: 'green',
          deployment: 'shop-green',
          role: 'idle',
          images: ['app=registry.example/shop:v0'],
          desired: 2,
          ready: 2,
          available: 2,
          updated: 2,
          template: templateHash(greenOld.spec!.template, 'slot'),
        },
      ],
      lastSwitch: JSON.parse(active.metadata.annotations![HISTORY_ANNOTATION]!)[0],
      scaleDownAt: '2030-01-01T00:10:00.000Z',
      pending: [],
      lastChange: null,
      problems: [],
      declaredBy: null,
      checks: [],
      hpas: [],
      hpaWarning: null,
    });
  });

  it.each([
    { name: 'the old colour untouched since the switch', green: greenOld, want: '2030-01-01T00:10:00.000Z' },
    { name: 'a new version rolled out on the old colour', green: greenNew, want: null },
    { name: 'the old colour already scaled down', green: withZero(greenOld), want: null },
    { name: 'the old colour scaled by hand since the switch', green: edit(greenOld, (c) => (c.metadata.generation = 7)), want: null },
  ])('scaleDownAt shows only a scale-down that will happen: $name', ({ green, want }) => {
    const active = annotated(svc, { ...switchedFrom(greenOld), [SCALE_DOWN_AT_ANNOTATION]: '2030-01-01T00:10:00.000Z' });
    expect(appStatus(viewOf([blue, green], [active])).scaleDownAt).toBe(want);
  });

  it('no Service: nulls, and the colours still listed', () => {
    const s = appStatus(viewOf([blue], []));
    expect(s.activeService).toBeNull();
    expect(s.live).toBeNull();
    expect(s.idle).toBeNull();
    expect(s.lastSwitch).toBeNull();
    expect(s.scaleDownAt).toBeNull();
    expect(s.colours.map((c) => [c.colour, c.role])).toEqual([['blue', 'idle']]);
  });

  it('an unreadable history is a problem, not a crash', () => {
    const s = appStatus(viewOf([blue, greenSame], [annotated(svc, { [HISTORY_ANNOTATION]: '{oops' })]));
    expect(s.problems).toEqual(['the history annotation is not valid JSON']);
    expect(s.lastSwitch).toBeNull();
    expect(s.phase).toBe('stable');
  });
});
