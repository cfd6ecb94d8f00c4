// plugin/krew/bg.yaml is rendered by `npm run plugin:dist` from the archives it builds and
// committed. Its sha256 sums can only be checked against a build (test/e2e/plugin-exe.test.ts
// builds and compares); here: everything else in it is what the renderer writes for this
// version, for exactly the platforms plugin:dist builds, and nothing is a placeholder.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VERSION } from '../../../plugin/src/cli.ts';
import { DEFAULT_PLATFORMS, parseKrewManifest, releaseUri, renderKrewManifest } from '../../../scripts/krew-manifest.ts';

const REPO = resolve(import.meta.dirname, '../../..');
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string; devDependencies: Record<string, string> };
const committed = readFileSync(join(REPO, 'plugin/krew/bg.yaml'), 'utf8');

describe('plugin/krew/bg.yaml', () => {
  const parsed = parseKrewManifest(committed);

  it('is the rendering for package.json version and the embedded Node version', () => {
    expect(parsed.version).toBe(pkg.version);
    expect(VERSION).toBe(pkg.version);
    expect(committed).toBe(renderKrewManifest(pkg.version, pkg.devDependencies.node!, parsed.platforms));
  });

  it('lists the platforms plugin:dist builds, each with a real sha256 and its release URI', () => {
    expect(parsed.platforms.map((p) => `${p.os}-${p.arch}`).sort()).toEqual([...DEFAULT_PLATFORMS].sort());
    for (const p of parsed.platforms) {
      expect(p.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(p.sha256).not.toMatch(/^0+$/);
      expect(committed).toContain(`uri: ${releaseUri(pkg.version, p)}\n      sha256: "${p.sha256}"`);
    }
    expect(committed).not.toMatch(/placeholder|filled at release|0{64}/);
  });

  it.each([
    ['a sha256 that is not one', 'abc'],
    ['an empty sha256', ''],
  ])('refuses to render %s', (_, sha256) => {
    expect(() => renderKrewManifest('1.0.0', '24.21.0', [{ os: 'linux', arch: 'x64', sha256 }])).toThrow(/is not a sha256/);
  });
});
