// The status view model (src/core/status.ts AppStatus) as text: a tree for one
// app, a table for many. Pure: same input, same string.
import type { CheckView } from '../../../src/core/checks.ts';
import type { SwitchRecord } from '../../../src/core/history.ts';
import type { AppStatus, ColourStatus } from '../../../src/core/status.ts';
import { colourStyle, type Painter, phaseStyle, visibleLength } from './paint.ts';
import { fields, table } from './table.ts';
import { relative } from './time.ts';

export interface RenderOptions {
  paint: Painter;
  now: Date;
  /** -o wide: template fingerprints, full container=image lists, the Service and the message. */
  wide?: boolean;
}

const NONE = '<none>';

export function describeSwitch(r: SwitchRecord | null, now: Date, p: Painter): string {
  if (!r) return NONE;
  const by = r.by ? ` by ${r.by}` : '';
  const forced = (r.forced ? ' (forced)' : '') + (r.breakGlass ? ' (break-glass)' : '');
  return `${r.kind} ${p.paint(colourStyle(r.from), r.from)} -> ${p.paint(colourStyle(r.to), r.to)}, ${relative(r.at, now)}${by}${forced}`;
}

export const CHECK_TITLE = { pre: 'Pre-switch check', post: 'Post-switch check' } as const;

/** One check on one line: which version of which colour, from which CronJob, and where it stands. */
export function describeCheck(c: CheckView, now: Date, p: Painter): string {
  const what = `${p.paint(colourStyle(c.colour), c.colour)} version ${c.version.slice(0, 8)} (CronJob ${c.template})`;
  const job = c.job ? `, Job ${c.job}` : '';
  switch (c.state) {
    case 'waiting': {
      const prev = c.previous ? `; the last check, of version ${c.previous.version.slice(0, 8)}, ${c.previous.state}` : '';
      return `${what}: ${p.paint('yellow', 'waiting')} to start (once ${c.deployment} is rolled out and available)${prev}`;
    }
    case 'running':
      return `${what}: ${p.paint('yellow', 'running')}${job}, started ${relative(c.startedAt ?? '', now)}`;
    case 'passed':
      return `${what}: ${p.paint('green', 'passed')}${job}, ${relative(c.finishedAt ?? c.startedAt ?? '', now)}`;
    case 'failed':
      return `${what}: ${p.paint('red', 'failed')}${c.reason ? ` (${c.reason})` : ''}${job}, ${relative(c.finishedAt ?? c.startedAt ?? '', now)}`;
  }
}

function counts(c: ColourStatus): string {
  return `${c.ready}/${c.desired} ready, ${c.updated} up-to-date, ${c.available} available`;
}

/** The detail view of one app. */
export function renderTree(s: AppStatus, o: RenderOptions): string {
  const p = o.paint;
  const header: [string, string][] = [
    ['Name', s.app],
    ['Namespace', s.namespace],
    ['Phase', p.paint(phaseStyle(s.phase), s.phase)],
    ['Message', s.message],
    ['Live', s.live ? p.paint(colourStyle(s.live), s.live) : NONE],
    ...(s.declaredBy ? [['Managed', s.declaredBy] as [string, string]] : []),
    ['Last switch', describeSwitch(s.lastSwitch, o.now, p)],
  ];
  if (s.scaleDownAt) {
    const idle = s.idle ? `${p.paint(colourStyle(s.idle), s.idle)} at ` : '';
    header.push(['Scale-down', `${idle}${s.scaleDownAt} (${relative(s.scaleDownAt, o.now)})`]);
  }
  for (const [i, c] of s.pending.entries())
    header.push([
      i === 0 ? 'Pending' : '',
      `${c.summary} by ${c.by || 'an unknown user'}, ${c.at ? relative(c.at, o.now) : 'at an unknown time'}, recorded on ${c.holder}: ${c.images.join(' ')}`,
    ]);
  if (s.lastChange && !s.lastChange.applied)
    header.push([
      'Not applied',
      p.paint(
        'red',
        `${s.lastChange.summary} by ${s.lastChange.by || 'an unknown user'} (${relative(s.lastChange.at, o.now)}): ${s.lastChange.reason ?? 'no reason given'}`,
      ),
    ]);
  for (const c of s.checks) header.push([CHECK_TITLE[c.phase], describeCheck(c, o.now, p)]);
  for (const [i, h] of s.hpas.entries()) {
    const scales = h.colour ? `${p.paint(colourStyle(h.colour), h.colour)}${h.follows === 'live' ? ' (live)' : ' (idle)'}` : h.target;
    const current =
      h.currentReplicas === null
        ? ''
        : `, ${h.currentReplicas} current${h.desiredReplicas !== null && h.desiredReplicas !== h.currentReplicas ? `, ${h.desiredReplicas} desired` : ''}`;
    header.push([
      i === 0 ? 'HPA' : '',
      `${h.name} scales ${h.colour ? `${h.target}, ` : ''}${scales}: ${h.minReplicas}-${h.maxReplicas ?? '?'} replicas${current}`,
    ]);
  }
  if (s.hpaWarning) header.push([s.hpas.length ? '' : 'HPA', p.paint('red', s.hpaWarning)]);
  if (o.wide) header.push(['Slot label', s.slotLabel]);
  s.problems.forEach((problem, i) => header.push([i === 0 ? 'Problems' : '', p.paint('red', problem)]));
  let text = fields(header);

  interface Node {
    label: string;
    role: string;
    detail: string;
    children: string[];
  }
  const nodes: Node[] = [];
  if (s.activeService)
    nodes.push({
      label: `Service/${s.activeService}`,
      role: 'active',
      detail: s.live ? `selects ${s.slotLabel}=${p.paint(colourStyle(s.live), s.live)}` : `selects no colour`,
      children: [],
    });
  else nodes.push({ label: 'Service/<none>', role: 'active', detail: 'missing', children: [] });
  for (const name of s.previewServices)
    nodes.push({
      label: `Service/${name}`,
      role: 'preview',
      detail: s.idle ? `follows the idle colour (${p.paint(colourStyle(s.idle), s.idle)})` : 'follows the idle colour',
      children: [],
    });
  for (const colour of ['blue', 'green'] as const) {
    const c = s.colours.find((x) => x.colour === colour);
    const painted = p.paint(colourStyle(colour), colour);
    if (!c) {
      nodes.push({ label: `Deployment/<none>`, role: painted, detail: 'missing', children: [] });
      continue;
    }
    const role = c.role === 'live' && s.live ? `${painted} (live)` : s.idle === colour ? `${painted} (idle)` : painted;
    nodes.push({
      label: `Deployment/${c.deployment}`,
      role,
      detail: counts(c) + (o.wide ? `, template ${c.template}` : ''),
      children: c.images,
    });
  }
  const labelW = Math.max(...nodes.map((n) => n.label.length)) + 3;
  const roleW = Math.max(...nodes.map((n) => visibleLength(n.role))) + 3;
  text += `\n${s.app}\n`;
  nodes.forEach((n, i) => {
    const last = i === nodes.length - 1;
    const line = `${last ? '└── ' : '├── '}${n.label.padEnd(labelW)}${n.role}${' '.repeat(roleW - visibleLength(n.role))}${n.detail}`;
    text += `${line.trimEnd()}\n`;
    n.children.forEach((child, j) => {
      text += `${last ? '    ' : '│   '}${j === n.children.length - 1 ? '└── ' : '├── '}${child}\n`;
    });
  });
  return text;
}

function colourCell(s: AppStatus, colour: 'blue' | 'green', wide: boolean): string {
  const c = s.colours.find((x) => x.colour === colour);
  if (!c) return '-';
  const images = wide ? c.images : [...new Set(c.images.map((i) => i.slice(i.indexOf('=') + 1)))];
  return `${c.ready}/${c.desired} ${images.join(',') || NONE}`.trimEnd();
}

/** One line per app. allNamespaces adds the NAMESPACE column. */
export function renderTable(items: readonly AppStatus[], o: RenderOptions & { allNamespaces?: boolean }): string {
  const p = o.paint;
  const headers = [
    ...(o.allNamespaces ? ['NAMESPACE'] : []),
    'APP',
    'PHASE',
    'LIVE',
    'BLUE',
    'GREEN',
    'PREVIEW',
    'LAST SWITCH',
    ...(o.wide ? ['SERVICE', 'SLOT LABEL', 'MESSAGE'] : []),
  ];
  const rows = items.map((s) => [
    ...(o.allNamespaces ? [s.namespace] : []),
    s.app,
    p.paint(phaseStyle(s.phase), s.phase),
    s.live ? p.paint(colourStyle(s.live), s.live) : NONE,
    colourCell(s, 'blue', !!o.wide),
    colourCell(s, 'green', !!o.wide),
    s.previewServices.join(',') || NONE,
    s.lastSwitch ? `to ${p.paint(colourStyle(s.lastSwitch.to), s.lastSwitch.to)} ${relative(s.lastSwitch.at, o.now)}` : NONE,
    ...(o.wide ? [s.activeService ?? NONE, s.slotLabel, s.message] : []),
  ]);
  return table(headers, rows);
}
