import { describe, expect, it } from 'vitest';
import { availabilityOf, readyToServe } from '../../../src/core/availability.ts';
import type { Deployment } from '../../../src/core/k8s-types.ts';
import { deployment, edit } from './builders.ts';

const st = (s: NonNullable<Deployment['status']>) => s;

describe('availabilityOf', () => {
  it.each([
    {
      name: 'fully rolled out',
      d: deployment({ colour: 'green', replicas: 3 }),
      want: { desired: 3, current: 3, updated: 3, ready: 3, available: 3, observed: true },
    },
    {
      name: 'no status yet, replicas defaulted to 1',
      d: edit(deployment({ colour: 'green' }), (c) => {
        delete c.status;
        delete c.spec!.replicas;
      }),
      want: { desired: 1, current: 0, updated: 0, ready: 0, available: 0, observed: false },
    },
    {
      name: 'generation not observed',
      d: deployment({ colour: 'green', generation: 5, status: st({ observedGeneration: 4 }) }),
      want: { desired: 2, current: 0, updated: 0, ready: 0, available: 0, observed: false },
    },
    {
      name: 'no generation at all counts as observed',
      d: edit(deployment({ colour: 'green', status: {} }), (c) => delete c.metadata.generation),
      want: { desired: 2, current: 0, updated: 0, ready: 0, available: 0, observed: true },
    },
  ])('$name', ({ d, want }) => {
    expect(availabilityOf(d)).toEqual(want);
  });
});

describe('readyToServe', () => {
  it.each([
    { name: 'rolled out at the required count', d: deployment({ colour: 'green', replicas: 3 }), required: 3, want: { ok: true } },
    { name: 'more than required', d: deployment({ colour: 'green', replicas: 5 }), required: 3, want: { ok: true } },
    {
      name: 'required 0 still needs one available pod',
      d: deployment({ colour: 'green', replicas: 0 }),
      required: 0,
      want: { ok: false, reason: 'shop-green is scaled to 0 replicas, fewer than the 1 the live colour runs' },
    },
    { name: 'required 0, one pod', d: deployment({ colour: 'green', replicas: 1 }), required: 0, want: { ok: true } },
    {
      name: 'controller behind',
      d: deployment({ colour: 'green', generation: 7, status: st({ observedGeneration: 6, replicas: 2, updatedReplicas: 2, availableReplicas: 2 }) }),
      required: 2,
      want: { ok: false, reason: 'shop-green is still rolling out (its controller has not observed generation 7)' },
    },
    {
      name: 'paused (even when otherwise ready)',
      d: deployment({ colour: 'green', paused: true }),
      required: 2,
      want: { ok: false, reason: 'shop-green is paused' },
    },
    {
      name: 'scaled below the live count',
      d: deployment({ colour: 'green', replicas: 2 }),
      required: 5,
      want: { ok: false, reason: 'shop-green is scaled to 2 replicas, fewer than the 5 the live colour runs' },
    },
    {
      name: 'some pods still on the old template',
      d: deployment({ colour: 'green', replicas: 4, status: st({ observedGeneration: 1, replicas: 4, updatedReplicas: 3, availableReplicas: 4 }) }),
      required: 4,
      want: { ok: false, reason: 'shop-green is still rolling out (3 of 4 pods updated, 4 running)' },
    },
    {
      name: 'old pods not yet gone (surge)',
      d: deployment({ colour: 'green', replicas: 4, status: st({ observedGeneration: 1, replicas: 5, updatedReplicas: 4, availableReplicas: 5 }) }),
      required: 4,
      want: { ok: false, reason: 'shop-green is still rolling out (4 of 4 pods updated, 5 running)' },
    },
    {
      name: 'scaling down, every pod on the current template',
      d: deployment({ colour: 'green', replicas: 2, status: st({ observedGeneration: 1, replicas: 3, updatedReplicas: 3, availableReplicas: 3 }) }),
      required: 2,
      want: { ok: true },
    },
    {
      name: 'updated but not available',
      d: deployment({ colour: 'green', replicas: 4, status: st({ observedGeneration: 1, replicas: 4, updatedReplicas: 4, availableReplicas: 2 }) }),
      required: 4,
      want: { ok: false, reason: 'shop-green has 2/4 available replicas' },
    },
    {
      name: 'no status at all',
      d: edit(deployment({ colour: 'green', generation: 1 }), (c) => delete c.status),
      required: 1,
      want: { ok: false, reason: 'shop-green is still rolling out (its controller has not observed generation 1)' },
    },
  ])('$name', ({ d, required, want }) => {
    expect(readyToServe(d, required)).toEqual(want);
  });
});
