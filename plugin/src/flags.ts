// Parsing of flag values shared by the commands; bad values are usage errors (exit 64).
import { parseDuration } from '../../src/core/duration.ts';
import { type Colour, isColour } from '../../src/core/labels.ts';
import { usageError } from './exit-codes.ts';

export function parseTimeout(flag: string, text: string): number {
  const s = parseDuration(text);
  if (s === undefined) throw usageError(`invalid value ${JSON.stringify(text)} for ${flag}: use a duration such as 90s, 5m or 1h30m`);
  return s;
}

export function parseColour(flag: string, text: string | undefined): Colour | undefined {
  if (text === undefined) return undefined;
  if (!isColour(text)) throw usageError(`invalid value ${JSON.stringify(text)} for ${flag}: use blue or green`);
  return text;
}

export type OutputFormat = 'json' | 'yaml' | 'wide' | undefined;

export function parseOutput(text: string | undefined, allowed: readonly string[] = ['json', 'yaml', 'wide']): OutputFormat {
  if (text === undefined || text === '') return undefined;
  if (!allowed.includes(text)) throw usageError(`invalid value ${JSON.stringify(text)} for -o/--output: use ${allowed.join(', ')}`);
  return text as OutputFormat;
}

/** `deployment/NAME`, `deployments/NAME`, `deploy/NAME`, `deployment.apps/NAME`, or a bare NAME. */
export function parseDeploymentRef(text: string): string {
  const m = /^(?:(deployments?|deploy|deployments?\.apps)\/)?([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(text);
  if (!m) throw usageError(`invalid value ${JSON.stringify(text)} for --from: use deployment/NAME`);
  return m[2]!;
}
