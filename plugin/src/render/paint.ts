// ANSI colour, only when asked for: on a TTY, without --no-color, NO_COLOR unset.
import type { Phase } from '../../../src/core/status.ts';

const CODES = { red: 31, green: 32, yellow: 33, blue: 34, cyan: 36, gray: 90, bold: 1 } as const;
export type Style = keyof typeof CODES;

export interface Painter {
  readonly enabled: boolean;
  paint(style: Style | undefined, text: string): string;
}

export function painter(enabled: boolean): Painter {
  return {
    enabled,
    paint: (style, text) => (enabled && style && text ? `\x1b[${CODES[style]}m${text}\x1b[0m` : text),
  };
}

export const plain: Painter = painter(false);

/** Decides colour the way kubectl-adjacent tools do; NO_COLOR per no-color.org (set and not empty). */
export function colourWanted(opts: { isTTY: boolean; color: boolean; env: Readonly<Record<string, string | undefined>> }): boolean {
  return opts.isTTY && opts.color && !opts.env.NO_COLOR;
}

export function colourStyle(c: string | null | undefined): Style | undefined {
  return c === 'blue' ? 'blue' : c === 'green' ? 'green' : undefined;
}

export function phaseStyle(p: Phase): Style {
  switch (p) {
    case 'stable':
      return 'green';
    case 'ready-to-switch':
      return 'cyan';
    case 'idle-rolling-out':
    case 'checking':
      return 'yellow';
    case 'check-failed':
    case 'degraded':
      return 'red';
  }
}

const ANSI = /\x1b\[[0-9;]*m/g;
export function visibleLength(s: string): number {
  return [...s.replace(ANSI, '')].length;
}
export function stripAnsi(s: string): string {
  return s.replace(ANSI, '');
}
