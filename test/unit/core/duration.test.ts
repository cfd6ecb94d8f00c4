import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../../src/core/duration.ts';

describe('parseDuration', () => {
  it.each([
    { text: '0', seconds: 0 },
    { text: '0s', seconds: 0 },
    { text: '45s', seconds: 45 },
    { text: '10m', seconds: 600 },
    { text: '2h', seconds: 7200 },
    { text: '1h30m', seconds: 5400 },
    { text: '1h30m15s', seconds: 5415 },
    { text: '1.5h', seconds: 5400 },
    { text: '500ms', seconds: 0.5 },
    { text: '1m500ms', seconds: 60.5 },
    { text: ' 10m ', seconds: 600 },
    { text: '90s', seconds: 90 },
  ])('$text -> $seconds s', ({ text, seconds }) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  it.each([
    { name: 'undefined', text: undefined },
    { name: 'empty', text: '' },
    { name: 'a bare number', text: '10' },
    { name: 'negative', text: '-5s' },
    { name: 'days', text: '1d' },
    { name: 'words', text: 'soon' },
    { name: 'unit first', text: 'm10' },
    { name: 'space inside', text: '1h 30m' },
    { name: 'trailing garbage', text: '10mx' },
    { name: 'upper case', text: '10M' },
  ])('$name ($text) -> undefined', ({ text }) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe('formatDuration', () => {
  it.each([
    { seconds: 0, text: '0ms' },
    { seconds: 0.25, text: '250ms' },
    { seconds: 1, text: '1s' },
    { seconds: 59.6, text: '1m' },
    { seconds: 60, text: '1m' },
    { seconds: 90, text: '1m30s' },
    { seconds: 600, text: '10m' },
    { seconds: 3600, text: '1h' },
    { seconds: 3661, text: '1h1m1s' },
    { seconds: 7205, text: '2h5s' },
  ])('$seconds s -> $text', ({ seconds, text }) => {
    expect(formatDuration(seconds)).toBe(text);
  });

  it.each([0, 1, 59, 61, 600, 3599, 3600, 86_399, 90_061])('round trip through parseDuration: %i s', (s) => {
    expect(parseDuration(formatDuration(s))).toBe(s);
  });
});
