import { describe, expect, it } from 'vitest';
import type { AppView } from '../../../src/core/app.ts';
import type { SwitchRecord } from '../../../src/core/history.ts';
import type { Deployment } from '../../../src/core/k8s-types.ts';
import { HISTORY_ANNOTATION, SCALE_DOWN_AT_ANNOTATION } from '../../../src/core/labels.ts';
import { type ScaleDownAction, scaleDownDue } from '../../../src/core/scale-down.ts';
import { templateHash } from '../../../src/core/template.ts';
import { annotated, deployment, IMAGE_V2, NOW, service, viewOf } from './builders.ts';

const blue = deployment({ colour: 'blue', image: IMAGE_V2 });
const green = deployment({ colour: 'green', resourceVersion: '55' });
const svc = service({ role: 'active', resourceVersion: '77' });
const past = new Date(NOW.getTime() - 1000).toISOString();
const future = new Date(NOW.getTime() + 1000).toISOString();

function history(fromGreen: Deployment, o: Partial<SwitchRecord> = {}): string {
  return JSON.stringify([{ kind: 'switch', from: 'green', to: 'blue', at: past, fromTemplate: templateHash(fromGreen.spec!.template, 'slot'), ...o }]);
}
const active = (annotations: Record<string, string>) => annotated(svc, annotations);
const base = { service: 'shop', serviceResourceVersion: '77' };

describe('scaleDownDue', () => {
  it.each<{ name: string; view: AppView; want: ScaleDownAction | undefined }>([
    {
      name: 'due, the old colour still runs the previous version: scale it down',
      view: viewOf([blue, green], [active({ [SCALE_DOWN_AT_ANNOTATION]: past, [HISTORY_ANNOTATION]: history(green) })]),
      want: { kind: 'scale-down', deployment: 'shop-green', resourceVersion: '55', ...base },
    },
    {
      name: 'due, the old colour unchanged since the switch (same generation): scale it down',
      view: viewOf(
        [blue, green],
        [active({ [SCALE_DOWN_AT_ANNOTATION]: past, [HISTORY_ANNOTATION]: history(green, { fromGeneration: green.metadata.generation! }) })],
      ),
      want: { kind: 'scale-down', deployment: 'shop-green', resourceVersion: '55', ...base },
    },
    {
      name: 'due, but the old colour was scaled by hand since the switch (generation moved): leave it',
      view: viewOf(
        [blue, { ...green, metadata: { ...green.metadata, generation: green.metadata.generation! + 1 } }],
        [active({ [SCALE_DOWN_AT_ANNOTATION]: past, [HISTORY_ANNOTATION]: history(green, { fromGeneration: green.metadata.generation! }) })],
      ),
      want: {
        kind: 'clear',
        ...base,
        reason: `shop-green was changed since the switch (generation ${green.metadata.generation} -> ${green.metadata.generation! + 1}, e.g. scaled by hand); leaving it as it is`,
      },
    },
    {
      name: 'due exactly now',
      view: viewOf([blue, green], [active({ [SCALE_DOWN_AT_ANNOTATION]: NOW.toISOString(), [HISTORY_ANNOTATION]: history(green) })]),
      want: { kind: 'scale-down', deployment: 'shop-green', resourceVersion: '55', ...base },
    },
    {
      name: 'not due yet',
      view: viewOf([blue, green], [active({ [SCALE_DOWN_AT_ANNOTATION]: future, [HISTORY_ANNOTATION]: history(green) })]),
      want: undefined,
    },
    { name: 'no scale-down time', view: viewOf([blue, green], [active({ [HISTORY_ANNOTATION]: history(green) })]), want: undefined },
    { name: 'no active Service', view: viewOf([blue, green], []), want: undefined },
    {
      name: 'the time is not a time',
      view: viewOf([blue, green], [active({ [SCALE_DOWN_AT_ANNOTATION]: 'tomorrow' })]),
      want: { kind: 'clear', ...base, reason: 'bluegreen.io/scale-down-at=tomorrow is not a time' },
    },
    {
      name: 'no live colour',
      view: viewOf([blue, green], [service({ role: 'active', colour: 'purple', annotations: { [SCALE_DOWN_AT_ANNOTATION]: past } })]),
      want: undefined,
    },
    {
      name: 'the old colour is gone',
      view: viewOf([blue], [active({ [SCALE_DOWN_AT_ANNOTATION]: past, [HISTORY_ANNOTATION]: history(green) })]),
      want: { kind: 'clear', ...base, reason: 'no green Deployment' },
    },
    {
      name: 'already scaled down',
      view: viewOf([blue, deployment({ colour: 'green', replicas: 0 })], [active({ [SCALE_DOWN_AT_ANNOTATION]: past, [HISTORY_ANNOTATION]: history(green) })]),
      want: { kind: 'clear', ...base, reason: 'shop-green is already scaled down' },
    },
    {
      name: 'the old colour got a new version since (a redirect): left up',
      view: viewOf(
        [blue, deployment({ colour: 'green', image: 'registry.example/shop:v3' })],
        [active({ [SCALE_DOWN_AT_ANNOTATION]: past, [HISTORY_ANNOTATION]: history(green) })],
      ),
      want: { kind: 'clear', ...base, reason: 'shop-green runs a new version since the switch; leaving it up' },
    },
    {
      name: 'no history',
      view: viewOf([blue, green], [active({ [SCALE_DOWN_AT_ANNOTATION]: past })]),
      want: { kind: 'clear', ...base, reason: 'shop-green runs a new version since the switch; leaving it up' },
    },
    {
      name: 'the last switch came from the other colour',
      view: viewOf([blue, green], [active({ [SCALE_DOWN_AT_ANNOTATION]: past, [HISTORY_ANNOTATION]: history(green, { from: 'blue', to: 'green' }) })]),
      want: { kind: 'clear', ...base, reason: 'shop-green runs a new version since the switch; leaving it up' },
    },
  ])('$name', ({ view, want }) => {
    expect(scaleDownDue(view, NOW)).toEqual(want);
  });

  it('a rollout restart of the old colour is not a new version', () => {
    const restarted = deployment({ colour: 'green', templateAnnotations: { 'kubectl.kubernetes.io/restartedAt': 'x' } });
    const v = viewOf([blue, restarted], [active({ [SCALE_DOWN_AT_ANNOTATION]: past, [HISTORY_ANNOTATION]: history(green) })]);
    expect(scaleDownDue(v, NOW)?.kind).toBe('scale-down');
  });
});
