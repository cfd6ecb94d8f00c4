// The switch history, kept as JSON in an annotation on the active Service
// (the cluster is the only store).
import type { AppView } from './app.ts';
import { annotationsOf, type Service } from './k8s-types.ts';
import type { Colour } from './labels.ts';
import { HISTORY_ANNOTATION, isColour } from './labels.ts';
import { templateHash } from './template.ts';

export interface SwitchRecord {
  kind: 'switch' | 'rollback';
  from: Colour;
  to: Colour;
  /** RFC 3339 time of the switch. */
  at: string;
  /** Who ran it, when known. */
  by?: string;
  /** Images of the colour switched to. */
  images?: string[];
  /** Fingerprints (see templateHash) of both colours' templates at the switch. */
  fromTemplate?: string;
  toTemplate?: string;
  /** metadata.generation of the colour switched away from: any spec change since (a scale, a rollout) shows. */
  fromGeneration?: number;
  forced?: boolean;
  /** Why, when kube-bluegreen made it itself (a failed post-switch check). */
  reason?: string;
  /**
   * Made with `--break-glass`: as the break-glass group, which the webhooks skip (they were down),
   * so nothing but the command's own checks and the cluster policy looked at it.
   */
  breakGlass?: boolean;
}

export const HISTORY_LIMIT = 20;

export interface ParsedHistory {
  records: SwitchRecord[];
  /** Set when the annotation exists but cannot be read; records is then empty. */
  error?: string;
}

export function parseHistory(annotation: string | undefined): ParsedHistory {
  if (!annotation) return { records: [] };
  let raw: unknown;
  try {
    raw = JSON.parse(annotation);
  } catch {
    return { records: [], error: 'the history annotation is not valid JSON' };
  }
  if (!Array.isArray(raw)) return { records: [], error: 'the history annotation is not a JSON array' };
  const records: SwitchRecord[] = [];
  for (const r of raw) {
    if (r && typeof r === 'object' && isColour((r as SwitchRecord).from) && isColour((r as SwitchRecord).to) && typeof (r as SwitchRecord).at === 'string') {
      const rec = r as SwitchRecord;
      records.push({ ...rec, kind: rec.kind === 'rollback' ? 'rollback' : 'switch' });
    }
  }
  return { records };
}

/** The annotation value with `rec` appended, keeping the newest HISTORY_LIMIT records. */
export function appendHistory(records: readonly SwitchRecord[], rec: SwitchRecord, limit = HISTORY_LIMIT): string {
  return JSON.stringify([...records, rec].slice(-limit));
}

export function lastSwitch(records: readonly SwitchRecord[]): SwitchRecord | undefined {
  return records[records.length - 1];
}

/** An app's switch history: the annotation on its active Service, read. */
export function historyOf(active: Service | undefined): ParsedHistory {
  return parseHistory(annotationsOf(active)[HISTORY_ANNOTATION]);
}

/** The app's last switch or rollback, from its active Service. */
export function lastSwitchOf(active: Service | undefined): SwitchRecord | undefined {
  return lastSwitch(historyOf(active).records);
}

/**
 * Whether `colour` still runs the version that was live before the last switch, as the switch
 * left it: the old colour kept warm (or scaled down) for a rollback, a version that served traffic.
 */
export function holdsPreviousVersion(view: AppView, colour: Colour): boolean {
  const d = view.deployments[colour];
  const last = lastSwitchOf(view.active);
  return !!d && last?.from === colour && last.fromTemplate === templateHash(d.spec?.template, view.slotKey);
}

/**
 * The record of a switch or a rollback of `view` from `from` to `to` at `at`, with both colours'
 * template fingerprints; `extra` (the images, who and why) comes before them.
 */
export function switchRecord(view: AppView, kind: SwitchRecord['kind'], from: Colour, to: Colour, at: Date, extra: Partial<SwitchRecord> = {}): SwitchRecord {
  return {
    kind,
    from,
    to,
    at: at.toISOString(),
    ...extra,
    fromTemplate: templateHash(view.deployments[from]?.spec?.template, view.slotKey),
    toTemplate: templateHash(view.deployments[to]?.spec?.template, view.slotKey),
  };
}
