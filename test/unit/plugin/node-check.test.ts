// The npm-installed entry (plugin/bin/kubectl-bg.cjs) checks the Node version before
// loading anything: on an old Node one line and exit 1, never a stack trace.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = resolve(import.meta.dirname, '../../..');
const OLD_NODE = '/usr/bin/node';
const oldMajor = existsSync(OLD_NODE) ? Number(execFileSync(OLD_NODE, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' })) : 99;

describe('plugin/bin: the Node version check', () => {
  it.each(['kubectl-bg.cjs', 'kubectl_complete-bg.cjs'])(`%s on the machine's old Node (${OLD_NODE}): one line naming the Node it needs, exit 1`, (file) => {
    if (oldMajor >= 24) return void console.warn(`${OLD_NODE} is Node ${oldMajor}: nothing old to check against`);
    const r = spawnSync(OLD_NODE, [join(REPO, 'plugin/bin', file), 'status'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^kubectl-bg: needs Node\.js 24 or later, and the node on PATH \(\/usr\/bin\/node\) is v\d+\.\d+\.\d+; install Node\.js 24, or use the single executable, which needs no Node \(\S+\)\n$/,
    );
  });

  it('on Node 24 it goes on to the real entry (here one that is missing: one line again)', () => {
    const r = spawnSync(process.execPath, [join(REPO, 'plugin/bin/kubectl-bg.cjs')], {
      encoding: 'utf8',
      env: { ...process.env, KBG_PLUGIN_ENTRY: 'nope.js' },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^kubectl-bg: cannot load \S+nope\.js: .* \(run npm run build first\)\n$/);
  });

  it('package.json installs these entries', () => {
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
    expect(pkg.bin).toEqual({ 'kubectl-bg': 'plugin/bin/kubectl-bg.cjs', 'kubectl_complete-bg': 'plugin/bin/kubectl_complete-bg.cjs' });
    expect(pkg.files).toContain('plugin/bin');
  });
});
