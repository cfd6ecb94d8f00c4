// The status view model rendered as text: exact strings, with and without colour.
import { describe, expect, it } from 'vitest';
import type { AppStatus } from '../../../src/core/status.ts';
import { colourWanted, painter, plain } from '../../../plugin/src/render/paint.ts';
import { renderTable, renderTree } from '../../../plugin/src/render/status.ts';
import { columns, fields, table } from '../../../plugin/src/render/table.ts';
import { humanDuration, relative } from '../../../plugin/src/render/time.ts';

const now = new Date('2026-01-01T12:00:00.000Z');

function status(over: Partial<AppStatus> = {}): AppStatus {
  return {
    app: 'shop',
    namespace: 'default',
    slotLabel: 'slot',
    activeService: 'shop',
    previewServices: [],
    live: 'blue',
    idle: 'green',
    phase: 'ready-to-switch',
    message: "green is rolled out and available; run 'kubectl bg switch shop'",
    colours: [
      {
        colour: 'blue',
        deployment: 'shop-blue',
        role: 'live',
        images: ['app=reg/shop:v1'],
        desired: 3,
        ready: 3,
        available: 3,
        updated: 3,
        template: 'aaaaaaaaaaaa',
      },
      {
        colour: 'green',
        deployment: 'shop-green',
        role: 'idle',
        images: ['app=reg/shop:v2'],
        desired: 3,
        ready: 3,
        available: 3,
        updated: 3,
        template: 'bbbbbbbbbbbb',
      },
    ],
    lastSwitch: null,
    scaleDownAt: null,
    pending: [],
    lastChange: null,
    problems: [],
    declaredBy: null,
    checks: [],
    hpas: [],
    hpaWarning: null,
    ...over,
  };
}

const switched = status({
  live: 'green',
  idle: 'blue',
  phase: 'stable',
  message: "blue keeps the previous version warm; 'kubectl bg rollback shop' switches back at once",
  previewServices: ['shop-preview'],
  colours: [
    {
      colour: 'blue',
      deployment: 'shop-blue',
      role: 'idle',
      images: ['init:migrate=reg/migrate:v1', 'app=reg/shop:v1'],
      desired: 3,
      ready: 3,
      available: 3,
      updated: 3,
      template: 'aaaaaaaaaaaa',
    },
    {
      colour: 'green',
      deployment: 'shop-green',
      role: 'live',
      images: ['app=reg/shop:v2'],
      desired: 3,
      ready: 3,
      available: 3,
      updated: 3,
      template: 'bbbbbbbbbbbb',
    },
  ],
  lastSwitch: { kind: 'switch', from: 'blue', to: 'green', at: '2026-01-01T11:55:00.000Z', by: 'alice' },
  scaleDownAt: '2026-01-01T12:05:00.000Z',
});

const degraded = status({
  activeService: null,
  live: null,
  idle: null,
  phase: 'degraded',
  message: "app shop has 2 Services (a, b) and none is annotated bluegreen.io/role=active; run 'kubectl annotate service a bluegreen.io/role=active'",
  colours: [
    {
      colour: 'blue',
      deployment: 'shop-blue',
      role: 'idle',
      images: ['app=reg/shop:v1'],
      desired: 2,
      ready: 1,
      available: 1,
      updated: 2,
      template: 'aaaaaaaaaaaa',
    },
  ],
  problems: [
    "app shop has 2 Services (a, b) and none is annotated bluegreen.io/role=active; run 'kubectl annotate service a bluegreen.io/role=active'",
    'Deployment shop-x of app shop has no slot=blue|green label in its pod template',
  ],
});

describe('renderTree (one app)', () => {
  it.each([
    [
      'ready to switch, no preview, never switched',
      status(),
      false,
      `Name:        shop
Namespace:   default
Phase:       ready-to-switch
Message:     green is rolled out and available; run 'kubectl bg switch shop'
Live:        blue
Last switch: <none>

shop
├── Service/shop            active         selects slot=blue
├── Deployment/shop-blue    blue (live)    3/3 ready, 3 up-to-date, 3 available
│   └── app=reg/shop:v1
└── Deployment/shop-green   green (idle)   3/3 ready, 3 up-to-date, 3 available
    └── app=reg/shop:v2
`,
    ],
    [
      'after a switch, with a preview, an init container and a pending scale-down',
      switched,
      false,
      `Name:        shop
Namespace:   default
Phase:       stable
Message:     blue keeps the previous version warm; 'kubectl bg rollback shop' switches back at once
Live:        green
Last switch: switch blue -> green, 5m ago by alice
Scale-down:  blue at 2026-01-01T12:05:00.000Z (in 5m)

shop
├── Service/shop            active         selects slot=green
├── Service/shop-preview    preview        follows the idle colour (blue)
├── Deployment/shop-blue    blue (idle)    3/3 ready, 3 up-to-date, 3 available
│   ├── init:migrate=reg/migrate:v1
│   └── app=reg/shop:v1
└── Deployment/shop-green   green (live)   3/3 ready, 3 up-to-date, 3 available
    └── app=reg/shop:v2
`,
    ],
    [
      'wide: slot label and template fingerprints',
      status(),
      true,
      `Name:        shop
Namespace:   default
Phase:       ready-to-switch
Message:     green is rolled out and available; run 'kubectl bg switch shop'
Live:        blue
Last switch: <none>
Slot label:  slot

shop
├── Service/shop            active         selects slot=blue
├── Deployment/shop-blue    blue (live)    3/3 ready, 3 up-to-date, 3 available, template aaaaaaaaaaaa
│   └── app=reg/shop:v1
└── Deployment/shop-green   green (idle)   3/3 ready, 3 up-to-date, 3 available, template bbbbbbbbbbbb
    └── app=reg/shop:v2
`,
    ],
    [
      'degraded: no active Service, a colour missing, problems listed',
      degraded,
      false,
      `Name:        shop
Namespace:   default
Phase:       degraded
Message:     app shop has 2 Services (a, b) and none is annotated bluegreen.io/role=active; run 'kubectl annotate service a bluegreen.io/role=active'
Live:        <none>
Last switch: <none>
Problems:    app shop has 2 Services (a, b) and none is annotated bluegreen.io/role=active; run 'kubectl annotate service a bluegreen.io/role=active'
             Deployment shop-x of app shop has no slot=blue|green label in its pod template

shop
├── Service/<none>         active   missing
├── Deployment/shop-blue   blue     1/2 ready, 2 up-to-date, 1 available
│   └── app=reg/shop:v1
└── Deployment/<none>      green    missing
`,
    ],
  ])('%s', (_name, s, wide, expected) => {
    expect(renderTree(s, { paint: plain, now, wide })).toBe(expected);
  });

  it('colours the phase, the colours and the problems with ANSI codes, keeping the alignment', () => {
    const text = renderTree(switched, { paint: painter(true), now });
    expect(text).toBe(`Name:        shop
Namespace:   default
Phase:       \x1b[32mstable\x1b[0m
Message:     blue keeps the previous version warm; 'kubectl bg rollback shop' switches back at once
Live:        \x1b[32mgreen\x1b[0m
Last switch: switch \x1b[34mblue\x1b[0m -> \x1b[32mgreen\x1b[0m, 5m ago by alice
Scale-down:  \x1b[34mblue\x1b[0m at 2026-01-01T12:05:00.000Z (in 5m)

shop
├── Service/shop            active         selects slot=\x1b[32mgreen\x1b[0m
├── Service/shop-preview    preview        follows the idle colour (\x1b[34mblue\x1b[0m)
├── Deployment/shop-blue    \x1b[34mblue\x1b[0m (idle)    3/3 ready, 3 up-to-date, 3 available
│   ├── init:migrate=reg/migrate:v1
│   └── app=reg/shop:v1
└── Deployment/shop-green   \x1b[32mgreen\x1b[0m (live)   3/3 ready, 3 up-to-date, 3 available
    └── app=reg/shop:v2
`);
    expect(text.replace(/\x1b\[[0-9;]*m/g, '')).toBe(renderTree(switched, { paint: plain, now }));
    expect(renderTree(degraded, { paint: painter(true), now })).toContain('Problems:    \x1b[31mapp shop has 2 Services');
  });
});

describe('renderTable (many apps)', () => {
  const web = status({
    app: 'web',
    namespace: 'prod',
    phase: 'idle-rolling-out',
    message: 'web-green is still rolling out (1 of 2 pods updated, 3 running)',
    slotLabel: 'environment',
    activeService: 'web',
    colours: [
      {
        colour: 'blue',
        deployment: 'web-blue',
        role: 'live',
        images: ['web=reg/web:v7', 'sidecar=reg/proxy:1'],
        desired: 2,
        ready: 2,
        available: 2,
        updated: 2,
        template: 'cccccccccccc',
      },
      {
        colour: 'green',
        deployment: 'web-green',
        role: 'idle',
        images: ['web=reg/web:v8', 'sidecar=reg/proxy:1'],
        desired: 2,
        ready: 1,
        available: 1,
        updated: 1,
        template: 'dddddddddddd',
      },
    ],
  });
  it.each([
    [
      'one namespace',
      [status(), switched],
      {},
      `APP    PHASE             LIVE    BLUE                             GREEN             PREVIEW        LAST SWITCH
shop   ready-to-switch   blue    3/3 reg/shop:v1                  3/3 reg/shop:v2   <none>         <none>
shop   stable            green   3/3 reg/migrate:v1,reg/shop:v1   3/3 reg/shop:v2   shop-preview   to green 5m ago
`,
    ],
    [
      'all namespaces',
      [status(), web],
      { allNamespaces: true },
      `NAMESPACE   APP    PHASE              LIVE   BLUE                         GREEN                        PREVIEW   LAST SWITCH
default     shop   ready-to-switch    blue   3/3 reg/shop:v1              3/3 reg/shop:v2              <none>    <none>
prod        web    idle-rolling-out   blue   2/2 reg/web:v7,reg/proxy:1   1/2 reg/web:v8,reg/proxy:1   <none>    <none>
`,
    ],
    [
      'wide',
      [web],
      { wide: true },
      `APP   PHASE              LIVE   BLUE                                     GREEN                                    PREVIEW   LAST SWITCH   SERVICE   SLOT LABEL    MESSAGE
web   idle-rolling-out   blue   2/2 web=reg/web:v7,sidecar=reg/proxy:1   1/2 web=reg/web:v8,sidecar=reg/proxy:1   <none>    <none>        web       environment   web-green is still rolling out (1 of 2 pods updated, 3 running)
`,
    ],
  ])('%s', (_name, items, opts, expected) => {
    expect(renderTable(items, { paint: plain, now, ...opts })).toBe(expected);
  });

  it('colours phase and live colour without breaking the columns', () => {
    const coloured = renderTable([status(), switched], { paint: painter(true), now });
    expect(coloured.split('\n')[1]).toBe(
      'shop   \x1b[36mready-to-switch\x1b[0m   \x1b[34mblue\x1b[0m    3/3 reg/shop:v1                  3/3 reg/shop:v2   <none>         <none>',
    );
    expect(coloured.replace(/\x1b\[[0-9;]*m/g, '')).toBe(renderTable([status(), switched], { paint: plain, now }));
  });
});

describe('colour is used only on a terminal, without --no-color and NO_COLOR', () => {
  it.each([
    [true, true, {}, true],
    [false, true, {}, false],
    [true, false, {}, false],
    [true, true, { NO_COLOR: '1' }, false],
    [true, true, { NO_COLOR: '' }, true],
  ])('isTTY=%s color=%s env=%j -> %s', (isTTY, color, env, expected) => {
    expect(colourWanted({ isTTY, color, env })).toBe(expected);
  });
});

describe('kubectl-style ages', () => {
  it.each([
    [0, '0s'],
    [59_000, '59s'],
    [119_000, '119s'],
    [120_000, '2m'],
    [330_000, '5m30s'],
    [600_000, '10m'],
    [179 * 60_000, '179m'],
    [3 * 3600_000 + 10 * 60_000, '3h10m'],
    [8 * 3600_000, '8h'],
    [47 * 3600_000, '47h'],
    [50 * 3600_000, '2d2h'],
    [30 * 86400_000, '30d'],
    [800 * 86400_000, '2y'],
  ])('%i ms -> %s', (ms, expected) => {
    expect(humanDuration(ms)).toBe(expected);
  });
  it.each([
    ['2026-01-01T11:55:00.000Z', '5m ago'],
    ['2026-01-01T12:05:00.000Z', 'in 5m'],
    ['not a time', 'not a time'],
  ])('relative(%s) -> %s', (at, expected) => {
    expect(relative(at, now)).toBe(expected);
  });
});

describe('table helpers', () => {
  it('pads by visible width, three spaces apart, no trailing blanks', () => {
    expect(
      table(
        ['A', 'LONG HEADER', 'C'],
        [
          ['xx', '', 'z'],
          ['y', 'b', ''],
        ],
      ),
    ).toBe('A    LONG HEADER   C\nxx                 z\ny    b\n');
    expect(
      columns(
        [
          ['\x1b[31mred\x1b[0m', 'x'],
          ['r', 'y'],
        ],
        '  ',
      ),
    ).toBe('  \x1b[31mred\x1b[0m   x\n  r     y\n');
    expect(
      fields([
        ['Name', 'a'],
        ['Namespace', 'b'],
        ['', 'c'],
      ]),
    ).toBe('Name:      a\nNamespace: b\n           c\n');
  });
});

describe('release checks in the tree', () => {
  it('one row per check, after the last switch', () => {
    const s = status({
      phase: 'checking',
      checks: [
        {
          phase: 'pre',
          template: 'shop-smoke',
          colour: 'green',
          deployment: 'shop-green',
          version: 'bbbbbbbbbbbb',
          state: 'running',
          job: 'shop-green-pre-bbbbbbbb-x1',
          startedAt: '2026-01-01T11:59:50.000Z',
          finishedAt: null,
          reason: null,
          previous: null,
        },
      ],
    });
    const lines = renderTree(s, { paint: plain, now }).split('\n');
    const i = lines.findIndex((l) => l.startsWith('Last switch:'));
    expect(lines[i + 1]).toBe('Pre-switch check: green version bbbbbbbb (CronJob shop-smoke): running, Job shop-green-pre-bbbbbbbb-x1, started 10s ago');
  });
});

describe('the HPA in the tree', () => {
  const follower = {
    name: 'shop',
    target: 'shop-blue',
    colour: 'blue' as const,
    follows: 'live' as const,
    minReplicas: 2,
    maxReplicas: 10,
    currentReplicas: 5,
    desiredReplicas: 6,
  };
  const rows = (s: AppStatus) =>
    renderTree(s, { paint: plain, now })
      .split('\n')
      .filter((l) => /^HPA:|^ {6,}\S/.test(l) && !l.includes('└') && !l.includes('├'));

  it('one row per HPA: what it scales, which colour, its bounds, current and desired replicas', () => {
    expect(rows(status({ hpas: [follower] }))).toEqual(['HPA:         shop scales shop-blue, blue (live): 2-10 replicas, 5 current, 6 desired']);
  });

  it('a warning after the rows (or on its own row when no HPA scales a colour)', () => {
    const onIdle = {
      ...follower,
      name: 'shop-green',
      target: 'shop-green',
      colour: 'green' as const,
      follows: 'idle' as const,
      currentReplicas: 2,
      desiredReplicas: 2,
    };
    expect(rows(status({ hpas: [follower, onIdle], hpaWarning: 'app shop has 2 HorizontalPodAutoscalers' }))).toEqual([
      'HPA:         shop scales shop-blue, blue (live): 2-10 replicas, 5 current, 6 desired',
      '             shop-green scales shop-green, green (idle): 2-10 replicas, 2 current',
      '             app shop has 2 HorizontalPodAutoscalers',
    ]);
    expect(rows(status({ hpaWarning: 'HorizontalPodAutoscaler worker scales Deployment/x' }))).toEqual([
      'HPA:         HorizontalPodAutoscaler worker scales Deployment/x',
    ]);
  });
});
