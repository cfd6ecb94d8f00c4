import { describe, expect, it } from 'vitest';
import { appendHistory, HISTORY_LIMIT, lastSwitch, parseHistory, type SwitchRecord } from '../../../src/core/history.ts';

const rec = (i: number, o: Partial<SwitchRecord> = {}): SwitchRecord => ({
  kind: 'switch',
  from: i % 2 ? 'green' : 'blue',
  to: i % 2 ? 'blue' : 'green',
  at: new Date(Date.UTC(2030, 0, 1, 0, i)).toISOString(),
  ...o,
});

describe('parseHistory', () => {
  it.each([
    { name: 'no annotation', text: undefined, want: { records: [] } },
    { name: 'empty annotation', text: '', want: { records: [] } },
    { name: 'empty array', text: '[]', want: { records: [] } },
    { name: 'not JSON', text: '[{"from":', want: { records: [], error: 'the history annotation is not valid JSON' } },
    { name: 'an object', text: '{"from":"blue"}', want: { records: [], error: 'the history annotation is not a JSON array' } },
    { name: 'a string', text: '"x"', want: { records: [], error: 'the history annotation is not a JSON array' } },
    { name: 'null', text: 'null', want: { records: [], error: 'the history annotation is not a JSON array' } },
    {
      name: 'two good records, in order',
      text: JSON.stringify([rec(0), rec(1, { kind: 'rollback', by: 'alice', images: ['app=x'] })]),
      want: { records: [rec(0), rec(1, { kind: 'rollback', by: 'alice', images: ['app=x'] })] },
    },
    {
      name: 'malformed entries are skipped, good ones kept',
      text: JSON.stringify([
        null,
        5,
        'x',
        { from: 'purple', to: 'blue', at: 't' },
        { from: 'blue', to: 'green' },
        { from: 'blue', to: 'green', at: 7 },
        rec(2),
      ]),
      want: { records: [rec(2)] },
    },
    {
      name: 'an unknown kind reads as a switch',
      text: JSON.stringify([
        { ...rec(0), kind: 'flip' },
        { ...rec(1), kind: undefined },
      ]),
      want: { records: [rec(0), rec(1)] },
    },
  ])('$name', ({ text, want }) => {
    expect(parseHistory(text)).toEqual(want);
  });
});

describe('appendHistory', () => {
  it('appends, newest last', () => {
    expect(JSON.parse(appendHistory([rec(0)], rec(1)))).toEqual([rec(0), rec(1)]);
  });

  it(`keeps the newest ${HISTORY_LIMIT}`, () => {
    expect(HISTORY_LIMIT).toBe(20);
    const full = Array.from({ length: 20 }, (_, i) => rec(i));
    const out = JSON.parse(appendHistory(full, rec(20))) as SwitchRecord[];
    expect(out).toHaveLength(20);
    expect(out[0]).toEqual(rec(1));
    expect(out[19]).toEqual(rec(20));
  });

  it('below the limit nothing is dropped', () => {
    const some = Array.from({ length: 19 }, (_, i) => rec(i));
    expect(JSON.parse(appendHistory(some, rec(19)))).toHaveLength(20);
  });

  it('a custom limit', () => {
    expect(JSON.parse(appendHistory([rec(0), rec(1), rec(2)], rec(3), 2))).toEqual([rec(2), rec(3)]);
  });

  it('round-trips through parseHistory', () => {
    const text = appendHistory([rec(0, { fromTemplate: 'a', toTemplate: 'b', forced: true })], rec(1));
    expect(parseHistory(text)).toEqual({ records: [rec(0, { fromTemplate: 'a', toTemplate: 'b', forced: true }), rec(1)] });
  });
});

describe('lastSwitch', () => {
  it.each([
    { name: 'none', records: [], want: undefined },
    { name: 'the newest', records: [rec(0), rec(1)], want: rec(1) },
  ])('$name', ({ records, want }) => {
    expect(lastSwitch(records)).toEqual(want);
  });
});
