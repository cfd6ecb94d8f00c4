// The webhook configurations' break-glass condition (src/webhook/configurations.ts): every webhook
// skips the break-glass group, the deployments.validate one keeps its own condition (matchConditions
// are ANDed), and the flag that names the group. The chart renders the same: test/unit/chart.test.ts.
import { describe, expect, it } from 'vitest';
import {
  BREAK_GLASS_GROUP,
  breakGlassCondition,
  checkBreakGlassGroup,
  DEPLOYMENT_VALIDATE_CONDITION,
  mutatingConfiguration,
  validatingConfiguration,
  type WebhookOptions,
} from '../../../src/webhook/configurations.ts';
import { webhookCommand } from '../../../src/webhook/flags.ts';

const base: WebhookOptions = { client: { url: 'https://127.0.0.1:9443' }, caBundle: 'Q0E=', excludeNamespaces: ['kube-system'] };
const hooks = (o: WebhookOptions) =>
  [...mutatingConfiguration(o).webhooks, ...validatingConfiguration(o).webhooks] as {
    name: string;
    matchConditions?: { name: string; expression: string }[];
  }[];

describe('break-glass matchConditions', () => {
  it('default: every webhook skips kube-bluegreen:break-glass', () => {
    expect(BREAK_GLASS_GROUP).toBe('kube-bluegreen:break-glass');
    const all = hooks(base);
    expect(all.map((w) => w.name)).toEqual([
      'deployments.mutate.bluegreen.io',
      'deployments.validate.bluegreen.io',
      'services.validate.bluegreen.io',
      'scale.validate.bluegreen.io',
    ]);
    const cond = { name: 'not-break-glass', expression: "!has(request.userInfo.groups) || !('kube-bluegreen:break-glass' in request.userInfo.groups)" };
    for (const w of all) expect(w.matchConditions?.at(-1), w.name).toEqual(cond);
  });

  it('deployments.validate: its own condition first, unchanged; both must hold for the webhook to be called', () => {
    const v = hooks(base).find((w) => w.name === 'deployments.validate.bluegreen.io')!;
    expect(v.matchConditions).toEqual([{ name: 'needs-a-look', expression: DEPLOYMENT_VALIDATE_CONDITION }, breakGlassCondition(BREAK_GLASS_GROUP)]);
    for (const w of hooks(base).filter((x) => x.name !== v.name)) expect(w.matchConditions, w.name).toHaveLength(1);
  });

  it('another group, or none', () => {
    for (const w of hooks({ ...base, breakGlassGroup: 'ops:emergency' }))
      expect(w.matchConditions?.at(-1)?.expression, w.name).toContain("!('ops:emergency' in request.userInfo.groups)");
    const none = hooks({ ...base, breakGlassGroup: '' });
    expect(none.find((w) => w.name === 'deployments.validate.bluegreen.io')?.matchConditions).toEqual([
      { name: 'needs-a-look', expression: DEPLOYMENT_VALIDATE_CONDITION },
    ]);
    for (const w of none.filter((x) => x.name !== 'deployments.validate.bluegreen.io')) expect(w.matchConditions, w.name).toBeUndefined();
  });

  it('a group that would end the CEL string is refused, not written', () => {
    for (const bad of ["a' in ['a'] || 'b", 'a\\b', 'a\nb']) {
      expect(() => checkBreakGlassGroup(bad)).toThrow(/quote, backslash or line break/);
      expect(() => hooks({ ...base, breakGlassGroup: bad })).toThrow();
    }
    expect(checkBreakGlassGroup('system:serviceaccounts:ops')).toBe('system:serviceaccounts:ops');
  });

  it('--break-glass-group (KBG_BREAK_GLASS_GROUP), default kube-bluegreen:break-glass', () => {
    const parse = (argv: string[], env: Record<string, string> = {}) => {
      const saved = process.env.KBG_BREAK_GLASS_GROUP;
      if (env.KBG_BREAK_GLASS_GROUP !== undefined) process.env.KBG_BREAK_GLASS_GROUP = env.KBG_BREAK_GLASS_GROUP;
      else delete process.env.KBG_BREAK_GLASS_GROUP;
      try {
        return webhookCommand().exitOverride().parse(argv, { from: 'user' }).opts().breakGlassGroup as string;
      } finally {
        if (saved === undefined) delete process.env.KBG_BREAK_GLASS_GROUP;
        else process.env.KBG_BREAK_GLASS_GROUP = saved;
      }
    };
    expect(parse([])).toBe(BREAK_GLASS_GROUP);
    expect(parse(['--break-glass-group', 'ops:emergency'])).toBe('ops:emergency');
    expect(parse(['--break-glass-group='])).toBe('');
    expect(parse([], { KBG_BREAK_GLASS_GROUP: 'from-env' })).toBe('from-env');
  });
});
