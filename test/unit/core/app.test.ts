import { describe, expect, it } from 'vitest';
import { appNameOf, colourOfDeployment, deploymentName, resolveApp, serviceRole, slotKeyOf } from '../../../src/core/app.ts';
import type { Deployment, Service } from '../../../src/core/k8s-types.ts';
import { SLOT_LABEL_ANNOTATION } from '../../../src/core/labels.ts';
import { deployment, edit, NS, selecting, service, viewOf } from './builders.ts';

const blue = deployment({ colour: 'blue' });
const green = deployment({ colour: 'green' });

describe('resolveApp: the active and preview Services', () => {
  it.each([
    {
      name: 'one Service annotated active',
      services: [service({ role: 'active' })],
      active: 'shop',
      previews: [],
      live: 'blue',
      problems: [],
    },
    {
      name: 'the only Service, not annotated',
      services: [service()],
      active: 'shop',
      previews: [],
      live: 'blue',
      problems: [],
    },
    {
      name: 'an active Service and a preview',
      services: [service({ role: 'active', colour: 'green' }), service({ name: 'shop-preview', role: 'preview', colour: 'blue' })],
      active: 'shop',
      previews: ['shop-preview'],
      live: 'green',
      problems: [],
    },
    {
      name: 'the only unannotated Service besides a preview is the active one',
      services: [service({ name: 'shop-preview', role: 'preview', colour: 'green' }), service()],
      active: 'shop',
      previews: ['shop-preview'],
      live: 'blue',
      problems: [],
    },
    {
      name: 'an annotated active Service wins over an unannotated one',
      services: [service({ name: 'shop-metrics', colour: 'green' }), service({ role: 'active' })],
      active: 'shop',
      previews: [],
      live: 'blue',
      problems: [],
    },
    {
      name: 'two Services annotated active',
      services: [service({ role: 'active' }), service({ name: 'shop-2', role: 'active' })],
      active: undefined,
      previews: [],
      live: undefined,
      problems: ['app shop has 2 Services annotated bluegreen.io/role=active (shop, shop-2); keep the annotation on one'],
    },
    {
      name: 'two unannotated Services',
      services: [service({ name: 'a' }), service({ name: 'b' })],
      active: undefined,
      previews: [],
      live: undefined,
      problems: ["app shop has 2 Services (a, b) and none is annotated bluegreen.io/role=active; run 'kubectl annotate service a bluegreen.io/role=active'"],
    },
    {
      name: 'only a preview Service',
      services: [service({ role: 'preview' })],
      active: undefined,
      previews: ['shop'],
      live: undefined,
      problems: [],
    },
    { name: 'no Service', services: [], active: undefined, previews: [], live: undefined, problems: [] },
    {
      name: 'an unknown role counts as unannotated',
      services: [service({ role: 'primary' })],
      active: 'shop',
      previews: [],
      live: 'blue',
      problems: [],
    },
    {
      name: 'a Service being deleted is ignored',
      services: [service({ role: 'active', deleting: true }), service({ name: 'shop-new', role: 'active', colour: 'green' })],
      active: 'shop-new',
      previews: [],
      live: 'green',
      problems: [],
    },
    {
      name: 'the active Service selects no slot',
      services: [service({ role: 'active', colour: null })],
      active: 'shop',
      previews: [],
      live: undefined,
      problems: ['Service shop selects no slot label; it should select slot=blue or slot=green'],
    },
    {
      name: 'the active Service selects purple',
      services: [service({ role: 'active', colour: 'purple' })],
      active: 'shop',
      previews: [],
      live: undefined,
      problems: ['Service shop selects slot=purple; it should select slot=blue or slot=green'],
    },
  ])('$name', ({ services, active, previews, live, problems }) => {
    const v = viewOf([blue, green], services as Service[]);
    expect(v.active?.metadata.name).toBe(active);
    expect(v.previews.map((s) => s.metadata.name)).toEqual(previews);
    expect(v.live).toBe(live);
    expect(v.idle).toBe(live === undefined ? undefined : live === 'blue' ? 'green' : 'blue');
    expect(v.problems).toEqual(problems);
    expect(v.namespace).toBe(NS);
    expect(v.app).toBe('shop');
  });

  it('has no `active`/`live`/`idle` keys at all when they cannot be told', () => {
    const v = viewOf([blue], []);
    expect(Object.keys(v).sort()).toEqual(['app', 'deployments', 'duplicates', 'hpas', 'namespace', 'objects', 'previews', 'problems', 'services', 'slotKey']);
  });
});

describe('resolveApp: the slot key', () => {
  const annotatedD = (d: Deployment, key: string) => edit(d, (c) => (c.metadata.annotations = { [SLOT_LABEL_ANNOTATION]: key }));
  it.each([
    { name: 'default', deployments: [blue], services: [service()], key: 'slot' },
    {
      name: 'from the active Service',
      deployments: [blue],
      services: [service({ slotKey: 'environment', annotateSlotKey: true })],
      key: 'environment',
    },
    {
      name: 'the active Service wins over another Service',
      deployments: [blue],
      services: [
        service({ name: 'shop-preview', role: 'preview', slotKey: 'version', annotateSlotKey: true }),
        service({ role: 'active', slotKey: 'environment', annotateSlotKey: true }),
      ],
      key: 'environment',
    },
    {
      name: 'the active Service wins over a Deployment',
      deployments: [annotatedD(blue, 'version')],
      services: [service({ role: 'active', slotKey: 'environment', annotateSlotKey: true })],
      key: 'environment',
    },
    {
      name: 'from any Service when the active one has none',
      deployments: [annotatedD(blue, 'version')],
      services: [service({ role: 'active' }), service({ name: 'shop-preview', role: 'preview', slotKey: 'environment', annotateSlotKey: true })],
      key: 'environment',
    },
    {
      name: 'from a Deployment when no Service names one',
      deployments: [blue, annotatedD(green, 'version')],
      services: [service()],
      key: 'version',
    },
    {
      name: 'from a Service when there is no active Service',
      deployments: [blue],
      services: [service({ name: 'a', slotKey: 'environment', annotateSlotKey: true }), service({ name: 'b' })],
      key: 'environment',
    },
    {
      name: 'an empty annotation is ignored',
      deployments: [blue],
      services: [service({ annotations: { [SLOT_LABEL_ANNOTATION]: '' } })],
      key: 'slot',
    },
  ])('$name -> $key', ({ deployments, services, key }) => {
    expect(viewOf(deployments, services).slotKey).toBe(key);
    const active = services.length === 1 ? services[0] : services.find((s) => s.metadata.annotations?.['bluegreen.io/role'] === 'active');
    expect(slotKeyOf({ deployments, services }, active)).toBe(key);
  });

  it('Deployments are filed by the custom key', () => {
    const b = deployment({ colour: 'blue', slotKey: 'environment' });
    const g = deployment({ colour: 'green', slotKey: 'environment' });
    const v = viewOf([b, g], [service({ slotKey: 'environment', annotateSlotKey: true, colour: 'green' })]);
    expect(v.deployments).toEqual({ blue: b, green: g });
    expect(v.live).toBe('green');
    expect(v.problems).toEqual([]);
  });
});

describe('resolveApp: the Deployments', () => {
  it.each([
    { name: 'one per colour', deployments: [blue, green], filed: { blue: 'shop-blue', green: 'shop-green' }, problems: [] },
    { name: 'only blue', deployments: [blue], filed: { blue: 'shop-blue' }, problems: [] },
    {
      name: 'two blue: the first is kept',
      deployments: [blue, deployment({ colour: 'blue', name: 'shop-blue-2' }), green],
      filed: { blue: 'shop-blue', green: 'shop-green' },
      problems: ['app shop has two blue Deployments (shop-blue, shop-blue-2); keep one per colour'],
    },
    {
      name: 'a Deployment without a colour',
      deployments: [blue, deployment({ colour: 'red', name: 'shop-red' })],
      filed: { blue: 'shop-blue' },
      problems: ['Deployment shop-red of app shop has no slot=blue|green label in its pod template'],
    },
    {
      name: 'a Deployment being deleted is ignored',
      deployments: [edit(blue, (c) => (c.metadata.deletionTimestamp = '2030-01-01T00:00:00Z')), deployment({ colour: 'blue', name: 'shop-blue-new' })],
      filed: { blue: 'shop-blue-new' },
      problems: [],
    },
    {
      name: 'the colour is read from the pod template, not the selector',
      deployments: [edit(blue, (c) => (c.spec!.selector = { matchLabels: { app: 'shop', slot: 'green' } }))],
      filed: { blue: 'shop-blue' },
      problems: [],
    },
  ])('$name', ({ deployments, filed, problems }) => {
    const v = viewOf(deployments, [service()]);
    expect(Object.fromEntries(Object.entries(v.deployments).map(([c, d]) => [c, d!.metadata.name]))).toEqual(filed);
    expect(v.problems).toEqual(problems);
  });

  it('problems from Services and Deployments add up, Services first', () => {
    const v = resolveApp({
      namespace: NS,
      app: 'shop',
      deployments: [blue, deployment({ colour: 'blue', name: 'b2' })],
      services: [service({ name: 'x' }), service({ name: 'y' })],
    });
    expect(v.problems).toHaveLength(2);
    expect(v.problems[0]).toMatch(/^app shop has 2 Services/);
    expect(v.problems[1]).toBe('app shop has two blue Deployments (shop-blue, b2); keep one per colour');
  });
});

describe('small helpers', () => {
  it.each([
    { name: 'labelled', o: blue, app: 'shop' },
    { name: 'no labels', o: edit(blue, (c) => delete c.metadata.labels), app: undefined },
    { name: 'empty value', o: edit(blue, (c) => (c.metadata.labels!['bluegreen.io/app'] = '')), app: undefined },
    { name: 'undefined object', o: undefined, app: undefined },
  ])('appNameOf: $name -> $app', ({ o, app }) => {
    expect(appNameOf(o)).toBe(app);
  });

  it.each([
    { name: 'blue', d: blue, key: 'slot', colour: 'blue' },
    { name: 'another key', d: blue, key: 'environment', colour: undefined },
    { name: 'not a colour', d: deployment({ colour: 'teal' }), key: 'slot', colour: undefined },
    { name: 'no template', d: edit(blue, (c) => delete c.spec!.template), key: 'slot', colour: undefined },
  ])('colourOfDeployment: $name -> $colour', ({ d, key, colour }) => {
    expect(colourOfDeployment(d, key)).toBe(colour);
  });

  it.each([
    { role: 'active', want: 'active' },
    { role: 'preview', want: 'preview' },
    { role: 'Active', want: undefined },
    { role: undefined, want: undefined },
  ])('serviceRole($role) -> $want', ({ role, want }) => {
    expect(serviceRole(service(role === undefined ? {} : { role }))).toBe(want);
  });

  it('deploymentName', () => {
    expect(deploymentName(blue)).toBe('shop-blue');
    expect(deploymentName(undefined)).toBe('<none>');
  });

  it('selecting() builder sanity: the view follows the selector', () => {
    expect(viewOf([blue, green], [selecting(service(), 'green')]).live).toBe('green');
  });
});
