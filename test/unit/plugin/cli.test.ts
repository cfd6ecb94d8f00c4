// The program as a whole: help with the exit codes, usage errors, completion.
import { describe, expect, it } from 'vitest';
import { BASH, ZSH } from '../../../plugin/src/commands/completion.ts';
import { EXIT } from '../../../plugin/src/exit-codes.ts';
import { FakeCluster } from './fake-cluster.ts';
import { dep, harness, seedShop } from './harness.ts';

describe('help and usage', () => {
  it('--help lists the commands and documents the exit codes (exit 0)', async () => {
    const r = await harness().run('--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Usage: kubectl bg \[options\] \[command\]\n/);
    for (const verb of ['status', 'switch', 'rollback', 'init', 'history', 'abort', 'completion']) expect(r.out).toContain(`\n  ${verb} `);
    for (const flag of ['--kubeconfig <path>', '--context <name>', '-n, --namespace <name>', '--no-color']) expect(r.out).toContain(flag);
    expect(r.out).toContain(`Exit codes:
  0   done (or nothing to do)
  1   error: app not enrolled or not found, API error, bad kubeconfig
  2   precondition not met: switch/rollback/abort refused (idle colour not ready,
      nothing to abort, ...) or a change refused by the admission webhook
  3   timeout: --wait/--timeout ran out
  64  usage error: unknown command or flag, missing or invalid argument
`);
  });

  it.each([
    [['switch', '--help'], 'Usage: kubectl bg switch [options] <app>'],
    [['help', 'init'], 'Usage: kubectl bg init [options] <app>'],
    [['status', '-h'], 'Usage: kubectl bg status [options] [app]'],
  ])('%j prints the command help (exit 0)', async (argv, first) => {
    const r = await harness().run(...argv);
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[0]).toBe(first);
  });

  it('--version', async () => {
    expect(await harness().run('--version')).toEqual({ code: 0, out: '0.1.0\n', err: '' });
  });

  it.each([
    [['bogus'], "error: unknown command 'bogus'\n"],
    [['--bogus'], "error: unknown option '--bogus'\n"],
    [['completion', 'fish'], 'error: unsupported shell "fish": use bash or zsh\n'],
  ])('%j is a usage error (exit 64)', async (argv, start) => {
    const r = await harness().run(...argv);
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.err.startsWith(start)).toBe(true);
  });

  it('global flags work after the command too, as with kubectl', async () => {
    const h = harness();
    seedShop(h.cluster);
    expect((await h.run('status', 'shop', '-n', 'default', '--no-color')).code).toBe(0);
    expect((await h.run('-n', 'default', 'status', 'shop')).code).toBe(0);
  });

  it('a kubeconfig that cannot be loaded: exit 1', async () => {
    const h = harness();
    h.ctx.connect = async () => {
      throw new Error('ENOENT: no such file or directory, open /nope');
    };
    expect(await h.run('status', '--kubeconfig', '/nope')).toEqual({
      code: 1,
      out: '',
      err: 'error: cannot load the kubeconfig: ENOENT: no such file or directory, open /nope\n',
    });
  });

  it('an API error is reported like kubectl does (exit 1)', async () => {
    const h = harness();
    h.cluster.listDeployments = async () => {
      const { apiError } = await import('./fake-cluster.ts');
      throw apiError(
        403,
        'Forbidden',
        'deployments.apps is forbidden: User "bob" cannot list resource "deployments" in API group "apps" in the namespace "default"',
      );
    };
    expect(await h.run('status')).toEqual({
      code: 1,
      out: '',
      err: 'Error from server (Forbidden): deployments.apps is forbidden: User "bob" cannot list resource "deployments" in API group "apps" in the namespace "default"\n',
    });
  });
});

describe('completion', () => {
  it.each([
    ['bash', BASH, 'complete -F _kubectl_bg kubectl-bg'],
    ['zsh', ZSH, 'compdef _kubectl_bg kubectl-bg'],
  ])('completion %s prints the script', async (shell, script, marker) => {
    const r = await harness().run('completion', shell);
    expect(r).toEqual({ code: 0, out: script, err: '' });
    expect(script).toContain(marker);
    expect(script).toContain('kubectl-bg __complete');
  });

  function cluster() {
    const h = harness({ cluster: new FakeCluster() });
    seedShop(h.cluster);
    h.cluster.put('deployments', dep('web', { app: null, colour: null }));
    h.cluster.put('deployments', {
      ...dep('cart-blue', { app: 'cart', colour: 'blue' }),
      metadata: { ...dep('cart-blue', { app: 'cart', colour: 'blue' }).metadata, namespace: 'prod' },
    });
    return h;
  }

  it.each([
    [[''], ['status\t', 'switch\t', 'rollback\t', 'check\t', 'init\t', 'history\t', 'abort\t', 'completion\t'], 4],
    [['s'], ['status\t', 'switch\t'], 4],
    [['switch', ''], ['shop'], 4],
    [['status', 'sh'], ['shop'], 4],
    [['-n', 'prod', 'rollback', ''], ['cart'], 4],
    [['history', '--namespace=prod', ''], ['cart'], 4],
    [['switch', 'shop', ''], [], 4],
    [['init', ''], ['web'], 4],
    [['init', 'web', '--from', ''], ['deployment/shop-blue', 'deployment/shop-green', 'deployment/web'], 4],
    [['init', 'web', '--from', 'deployment/w'], ['deployment/web'], 4],
    [['status', '-o', ''], ['json', 'yaml', 'wide'], 4],
    [['switch', 'shop', '--to', 'g'], ['green'], 4],
    [['status', '-n', ''], ['default', 'prod'], 4],
    [['completion', ''], ['bash', 'zsh'], 4],
    [['bogus', ''], [], 4],
    [['--kubeconfig', ''], [], 0],
  ])('kubectl_complete-bg %j', async (args, expected, directive) => {
    const h = cluster();
    const r = await h.run('__complete', ...args);
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines.at(-1)).toBe(`:${directive}`);
    const items = lines.slice(0, -1);
    if (expected.some((e) => e.endsWith('\t'))) expect(items.map((i) => i.slice(0, i.indexOf('\t') + 1))).toEqual(expected);
    else expect(items).toEqual(expected);
  });

  it('completes flags with their descriptions', async () => {
    const r = await cluster().run('__complete', 'switch', 'shop', '--d');
    expect(r.out).toBe('--dry-run\tprint what would change and ask the API server (dryRun=All); change nothing\n:4\n');
    const all = await cluster().run('__complete', 'status', '-');
    expect(all.out).toContain('--all-namespaces\tevery app in every namespace\n');
    expect(all.out).toContain('--kubeconfig\t');
  });

  it('prints nothing but the directive when the cluster cannot be reached', async () => {
    const h = harness();
    h.ctx.connect = async () => {
      throw new Error('no kubeconfig');
    };
    expect(await h.run('__complete', 'switch', '')).toEqual({ code: 0, out: ':4\n', err: '' });
  });
});
