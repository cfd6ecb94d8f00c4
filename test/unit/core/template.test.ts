import { describe, expect, it } from 'vitest';
import type { PodTemplateSpec } from '../../../src/core/k8s-types.ts';
import { RESTARTED_AT_ANNOTATION } from '../../../src/core/labels.ts';
import {
  canonicalJson,
  describeChange,
  imagesOf,
  jsonEqual,
  normalizeTemplate,
  sameTemplate,
  templateChange,
  templateHash,
} from '../../../src/core/template.ts';
import { deployment, edit, IMAGE_V2 } from './builders.ts';

const blueT = deployment({ colour: 'blue' }).spec!.template!;
const greenT = deployment({ colour: 'green' }).spec!.template!;
/** The same value with every object's keys in reverse order. */
function reversedKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reversedKeys);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(
    Object.entries(v)
      .reverse()
      .map(([k, x]) => [k, reversedKeys(x)]),
  );
}
const t = (fn: (c: PodTemplateSpec) => void, from = blueT) => edit(from, fn);

describe('canonicalJson', () => {
  it.each([
    { name: 'key order', a: { b: 1, a: 2 }, json: '{"a":2,"b":1}' },
    { name: 'nested key order', a: { z: { y: 1, x: [{ d: 1, c: 2 }] } }, json: '{"z":{"x":[{"c":2,"d":1}],"y":1}}' },
    { name: 'undefined values dropped', a: { a: undefined, b: null }, json: '{"b":null}' },
    { name: 'array order kept', a: [3, 1, 2], json: '[3,1,2]' },
    { name: 'null', a: null, json: 'null' },
    { name: 'undefined', a: undefined, json: 'null' },
    { name: 'string escaping', a: { 'k"': 'v\n' }, json: '{"k\\"":"v\\n"}' },
    { name: 'number', a: 1.5, json: '1.5' },
    { name: 'empty object', a: {}, json: '{}' },
  ])('$name', ({ a, json }) => {
    expect(canonicalJson(a)).toBe(json);
  });
});

describe('sameTemplate and templateHash', () => {
  it.each([
    { name: 'blue and green of one version (slot label set aside)', a: blueT, b: greenT, same: true },
    { name: 'key order reversed at every level', a: blueT, b: reversedKeys(blueT) as PodTemplateSpec, same: true },
    {
      name: 'labels in another order',
      a: blueT,
      b: t((c) => (c.metadata!.labels = { slot: 'blue', app: 'shop' })),
      same: true,
    },
    { name: 'template creationTimestamp null', a: blueT, b: t((c) => (c.metadata!.creationTimestamp = null)), same: true },
    { name: 'another image', a: blueT, b: t((c) => (c.spec!.containers![0]!.image = IMAGE_V2)), same: false },
    { name: 'another env value', a: blueT, b: t((c) => (c.spec!.containers![0]!.env = [{ name: 'GREETING', value: 'hi' }])), same: false },
    { name: 'another label', a: blueT, b: t((c) => (c.metadata!.labels!.tier = 'web')), same: false },
    {
      name: 'container order',
      a: t((c) => c.spec!.containers!.push({ name: 'side', image: 's' })),
      b: t((c) => c.spec!.containers!.unshift({ name: 'side', image: 's' })),
      same: false,
    },
    { name: 'one undefined', a: blueT, b: undefined, same: false },
    { name: 'both undefined', a: undefined, b: undefined, same: true },
  ])('$name -> $same', ({ a, b, same }) => {
    expect(sameTemplate(a, b, 'slot')).toBe(same);
    expect(templateHash(a, 'slot') === templateHash(b, 'slot')).toBe(same);
  });

  it.each([
    { name: 'restartedAt added', b: t((c) => (c.metadata!.annotations = { [RESTARTED_AT_ANNOTATION]: '2030-01-01T00:00:00Z' })) },
    {
      name: 'restartedAt besides another annotation',
      b: t((c) => (c.metadata!.annotations = { [RESTARTED_AT_ANNOTATION]: 'x' })),
    },
  ])('rollout restart ($name): same only with ignoreRestart; templateHash always ignores it', ({ b }) => {
    expect(sameTemplate(blueT, b, 'slot')).toBe(false);
    expect(sameTemplate(blueT, b, 'slot', { ignoreRestart: true })).toBe(true);
    expect(templateHash(b, 'slot')).toBe(templateHash(blueT, 'slot'));
  });

  it('other annotations beside restartedAt still count', () => {
    const a = t((c) => (c.metadata!.annotations = { [RESTARTED_AT_ANNOTATION]: '1', note: 'a' }));
    const b = t((c) => (c.metadata!.annotations = { [RESTARTED_AT_ANNOTATION]: '2', note: 'b' }));
    expect(sameTemplate(a, b, 'slot', { ignoreRestart: true })).toBe(false);
    expect(
      sameTemplate(
        a,
        t((c) => (c.metadata!.annotations = { note: 'a' })),
        'slot',
        { ignoreRestart: true },
      ),
    ).toBe(true);
  });

  it('the slot key is a parameter: with another key the slot label counts', () => {
    expect(sameTemplate(blueT, greenT, 'environment')).toBe(false);
    const envBlue = deployment({ colour: 'blue', slotKey: 'environment' }).spec!.template!;
    const envGreen = deployment({ colour: 'green', slotKey: 'environment' }).spec!.template!;
    expect(sameTemplate(envBlue, envGreen, 'environment')).toBe(true);
  });

  it('templateHash is 12 hex digits and stable', () => {
    expect(templateHash(blueT, 'slot')).toMatch(/^[0-9a-f]{12}$/);
    expect(templateHash(structuredClone(blueT), 'slot')).toBe(templateHash(blueT, 'slot'));
    expect(templateHash(undefined, 'slot')).toMatch(/^[0-9a-f]{12}$/);
    expect(templateHash(undefined, 'slot')).not.toBe(templateHash(blueT, 'slot'));
  });

  it('normalizeTemplate does not modify its input and drops emptied maps', () => {
    const onlySlot = t((c) => (c.metadata = { labels: { slot: 'blue' }, annotations: { [RESTARTED_AT_ANNOTATION]: 'x' } }));
    const copy = structuredClone(onlySlot);
    expect(normalizeTemplate(onlySlot, 'slot', { ignoreRestart: true })).toEqual({ ...onlySlot, metadata: {} });
    expect(onlySlot).toEqual(copy);
    expect(normalizeTemplate(undefined, 'slot')).toBeNull();
  });
});

describe('imagesOf', () => {
  it.each([
    { name: 'one container', t: blueT, images: ['app=registry.example/shop:v1'] },
    {
      name: 'init containers first, marked',
      t: t((c) => {
        c.spec!.initContainers = [{ name: 'migrate', image: 'm:1' }];
        c.spec!.containers!.push({ name: 'side' });
      }),
      images: ['init:migrate=m:1', 'app=registry.example/shop:v1', 'side='],
    },
    { name: 'no template', t: undefined, images: [] },
  ])('$name', ({ t: tpl, images }) => {
    expect(imagesOf(tpl)).toEqual(images);
  });
});

describe('describeChange', () => {
  it.each([
    { name: 'image only', b: t((c) => (c.spec!.containers![0]!.image = IMAGE_V2)), want: 'image change' },
    {
      name: 'image and rollout restart',
      b: t((c) => {
        c.spec!.containers![0]!.image = IMAGE_V2;
        c.metadata!.annotations = { [RESTARTED_AT_ANNOTATION]: 'x' };
      }),
      want: 'image change',
    },
    {
      name: 'image with the other colour slot label',
      b: t((c) => (c.spec!.containers![0]!.image = IMAGE_V2), greenT),
      want: 'image change',
    },
    { name: 'env only', b: t((c) => (c.spec!.containers![0]!.env = [])), want: 'pod template change' },
    {
      name: 'image and env',
      b: t((c) => {
        c.spec!.containers![0]!.image = IMAGE_V2;
        c.spec!.containers![0]!.env = [];
      }),
      want: 'pod template change',
    },
    { name: 'a container added', b: t((c) => c.spec!.containers!.push({ name: 'side', image: 's' })), want: 'pod template change' },
    { name: 'nothing', b: blueT, want: 'pod template change' },
  ])('$name -> $want', ({ b, want }) => {
    expect(describeChange(blueT, b, 'slot')).toBe(want);
  });

  it('does not modify its inputs', () => {
    const b = t((c) => (c.spec!.containers![0]!.image = IMAGE_V2));
    const copy = structuredClone(b);
    describeChange(blueT, b, 'slot');
    expect(b).toEqual(copy);
    expect(blueT.spec!.containers![0]!.image).toBe('registry.example/shop:v1');
  });
});

describe('templateChange', () => {
  const image = (c: PodTemplateSpec) => (c.spec!.containers![0]!.image = IMAGE_V2);
  it.each([
    { name: 'nothing', b: blueT, want: 'none' },
    { name: 'the other colour', b: greenT, want: 'none' },
    { name: 'image', b: t(image), want: 'image' },
    { name: 'image of the other colour', b: t(image, greenT), want: 'image' },
    {
      name: 'init container image',
      a: t((c) => (c.spec!.initContainers = [{ name: 'm', image: 'm:1' }])),
      b: t((c) => (c.spec!.initContainers = [{ name: 'm', image: 'm:2' }])),
      want: 'image',
    },
    { name: 'image removed', b: t((c) => delete c.spec!.containers![0]!.image), want: 'image' },
    { name: 'image and env', b: t((c) => (image(c), (c.spec!.containers![0]!.env = []))), want: 'other' },
    { name: 'image and a label', b: t((c) => (image(c), (c.metadata!.labels!.tier = 'web'))), want: 'other' },
    { name: 'container renamed', b: t((c) => (c.spec!.containers![0]!.name = 'web')), want: 'other' },
    { name: 'container added', b: t((c) => c.spec!.containers!.push({ name: 'side', image: 's' })), want: 'other' },
    { name: 'spec field outside containers', b: t((c) => (c.spec!.serviceAccountName = 'x')), want: 'other' },
    { name: 'template field beside metadata and spec', b: { ...blueT, extra: 1 } as PodTemplateSpec, want: 'other' },
    { name: 'no spec', b: { metadata: blueT.metadata } as PodTemplateSpec, want: 'other' },
    { name: 'no template', b: undefined, want: 'other' },
  ] as { name: string; a?: PodTemplateSpec; b: PodTemplateSpec | undefined; want: string }[])('$name: $want', ({ a, b, want }) => {
    expect(templateChange(a ?? blueT, b, 'slot', { ignoreRestart: true })).toBe(want);
  });

  it('a container list that is not a list is an error, on either side', () => {
    const broken = t((c) => ((c.spec as Record<string, unknown>).containers = { app: { image: 'x' } }));
    expect(() => templateChange(blueT, broken, 'slot')).toThrow('spec.containers is not a list');
    expect(() => templateChange(broken, blueT, 'slot')).toThrow('spec.containers is not a list');
    const brokenInit = t((c) => ((c.spec as Record<string, unknown>).initContainers = 'm:1'));
    // Thrown even when the metadata already differs (checked before the walk).
    expect(() =>
      templateChange(
        t((c) => (c.metadata!.labels!.tier = 'x')),
        brokenInit,
        'slot',
      ),
    ).toThrow('spec.initContainers is not a list');
  });

  // 'none' must mean exactly what comparing the normalised templates means: every pair of variants, both ways.
  const variants: [string, PodTemplateSpec | undefined][] = [
    ['blue', blueT],
    ['green', greenT],
    ['reversed keys', reversedKeys(blueT) as PodTemplateSpec],
    ['image', t(image)],
    ['restartedAt', t((c) => (c.metadata!.annotations = { [RESTARTED_AT_ANNOTATION]: 'x' }))],
    ['restartedAt and note', t((c) => (c.metadata!.annotations = { [RESTARTED_AT_ANNOTATION]: 'x', note: 'a' }))],
    ['note', t((c) => (c.metadata!.annotations = { note: 'a' }))],
    ['empty annotations', t((c) => (c.metadata!.annotations = {}))],
    ['creationTimestamp null', t((c) => (c.metadata!.creationTimestamp = null))],
    ['no metadata', t((c) => delete c.metadata)],
    ['only the slot label', t((c) => (c.metadata = { labels: { slot: 'blue' } }))],
    ['containers null', t((c) => ((c.spec as Record<string, unknown>).containers = null))],
    ['no containers', t((c) => delete c.spec!.containers)],
    ['env', t((c) => (c.spec!.containers![0]!.env = [{ name: 'A', value: '1' }]))],
    ['undefined', undefined],
  ];
  const pairs = variants.flatMap(([an, a]) => variants.map(([bn, b]) => ({ name: `${an} / ${bn}`, a, b })));
  it.each(pairs)('$name: none exactly when the normalised templates are equal', ({ a, b }) => {
    for (const ignoreRestart of [false, true]) {
      const viaNormal = jsonEqual(normalizeTemplate(a, 'slot', { ignoreRestart }), normalizeTemplate(b, 'slot', { ignoreRestart }));
      expect(templateChange(a, b, 'slot', { ignoreRestart }) === 'none').toBe(viaNormal);
    }
  });
});

it('reversedKeys (a helper of this file) really changes the serialisation order', () => {
  expect(JSON.stringify(reversedKeys(blueT))).not.toBe(JSON.stringify(blueT));
  expect(reversedKeys(blueT)).toEqual(blueT);
});
