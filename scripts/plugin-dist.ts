// npm run plugin:dist: `kubectl bg` as single executables, the krew archives and manifest.
//
//   1. esbuild bundles plugin/src/exe.ts into one CommonJS script (dist/sea/kubectl-bg.cjs),
//      and @kubernetes/client-node into another (dist/sea/client-node.cjs), which the
//      executable carries as an asset and loads only for auth-provider and proxy-url.
//   2. For each platform, Node's single executable application: a blob made by
//      `node --experimental-sea-config` (Node 24.21 has no --build-sea), injected with
//      postject into a copy of that platform's node binary, as dist/bin/kubectl-bg-<os>-<arch>.
//      The host's node is the `node` devDependency; the others come from the npm registry
//      (node-<os>-<arch>@<same version>, what the `node` package itself installs), cached in
//      ~/.cache/kube-bluegreen/node/. The host's blob also carries V8's code cache.
//   3. dist/krew/kubectl-bg-<os>-<arch>.tar.gz (kubectl-bg, kubectl_complete-bg, LICENSE) with
//      its .sha256, written byte for byte the same from the same sources (fixed tar headers,
//      gzip without a timestamp), and plugin/krew/bg.yaml rendered from them.
//
//   node scripts/plugin-dist.ts [--platforms linux-x64,linux-arm64] [--check]
//     --check: build, then exit 1 if plugin/krew/bg.yaml differs from what this build renders.
//     KBG_PLUGIN_PLATFORMS: the same as --platforms.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';
import { archiveName, DEFAULT_PLATFORMS, type KrewPlatform, type Platform, renderKrewManifest } from './krew-manifest.ts';

const REPO = resolve(import.meta.dirname, '..');
const DIST = join(REPO, 'dist');
const SEA = join(DIST, 'sea');
const BIN = join(DIST, 'bin');
const KREW = join(DIST, 'krew');
const MANIFEST = join(REPO, 'plugin/krew/bg.yaml');
const SENTINEL = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const HOST = `${process.platform}-${process.arch}`;

const log = (m: string) => process.stderr.write(`[plugin:dist] ${m}\n`);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** kubectl_complete-bg: kubectl runs it to complete `kubectl bg ...`; kubectl-bg is on PATH whenever kubectl finds the plugin. */
export const COMPLETE_SCRIPT =
  '#!/bin/sh\n# kubectl runs this to complete `kubectl bg ...` (kubectl 1.26+): the plugin answers.\nexec kubectl-bg __complete "$@"\n';

async function bundle(): Promise<{ main: string; clientNode: string }> {
  mkdirSync(SEA, { recursive: true });
  const common: esbuild.BuildOptions = {
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    legalComments: 'none',
    logLevel: 'warning',
    // Stable output: no timestamps, no absolute paths in what is emitted.
    sourcemap: false,
    minifySyntax: true,
    minifyWhitespace: true,
  };
  const main = join(SEA, 'kubectl-bg.cjs');
  await esbuild.build({
    ...common,
    entryPoints: [join(REPO, 'plugin/src/exe.ts')],
    outfile: main,
    alias: { '@kubernetes/client-node': join(REPO, 'plugin/src/sea-client-node.ts') },
  });
  const clientNode = join(SEA, 'client-node.cjs');
  await esbuild.build({
    ...common,
    stdin: { contents: "module.exports = require('@kubernetes/client-node');", resolveDir: REPO, loader: 'js', sourcefile: 'client-node-entry.js' },
    outfile: clientNode,
  });
  log(`bundled ${main} (${kb(main)}) and ${clientNode} (${kb(clientNode)})`);
  return { main, clientNode };
}

const kb = (f: string) => `${Math.round(statSync(f).size / 1024).toLocaleString('en')} KB`;

function nodeVersion(): string {
  return process.version.slice(1);
}

/** The node binary for a platform: the host's own, else node-<os>-<arch>@<version> from the npm registry (cached). */
function nodeBinary(p: Platform, version: string): string {
  if (p === HOST) return process.execPath;
  const cache = join(process.env.KBG_CACHE_DIR || join(homedir(), '.cache', 'kube-bluegreen'), 'node', `node-${p}-${version}`);
  const bin = join(cache, 'package', 'bin', 'node');
  if (existsSync(bin)) return bin;
  rmSync(cache, { recursive: true, force: true });
  mkdirSync(cache, { recursive: true });
  log(`fetching node-${p}@${version} from the npm registry`);
  const out = execFileSync('npm', ['pack', `node-${p}@${version}`, '--pack-destination', cache, '--silent'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const tgz = join(cache, out.trim().split('\n').pop()!);
  execFileSync('tar', ['-xzf', tgz, '-C', cache]);
  rmSync(tgz);
  if (!existsSync(bin)) throw new Error(`node-${p}@${version}: no package/bin/node in the package`);
  return bin;
}

async function buildExecutable(p: Platform, version: string, bundles: { main: string; clientNode: string }): Promise<string> {
  const host = p === HOST;
  const blob = join(SEA, `kubectl-bg-${p}.blob`);
  const config = join(SEA, `sea-config-${p}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      main: bundles.main,
      output: blob,
      disableExperimentalSEAWarning: true,
      // V8's code cache is for the V8 that makes it: the host's only.
      useCodeCache: host,
      useSnapshot: false,
      assets: { 'client-node.cjs': bundles.clientNode },
    }),
  );
  execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  const out = join(BIN, `kubectl-bg-${p}`);
  const tmp = `${out}.tmp`;
  copyFileSync(nodeBinary(p, version), tmp);
  chmodSync(tmp, 0o755);
  const { inject } = await import('postject');
  // postject logs its progress on stdout; keep it quiet.
  const write = process.stdout.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    await inject(tmp, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: SENTINEL, overwrite: true });
  } finally {
    process.stdout.write = write;
  }
  renameSync(tmp, out);
  log(`built ${out} (${Math.round(statSync(out).size / 2 ** 20)} MB)`);
  return out;
}

/** A ustar archive with fixed owners and times, so the same files give the same bytes. */
function tar(files: { name: string; data: Buffer; mode: number }[]): Buffer {
  const blocks: Buffer[] = [];
  for (const f of files) {
    const h = Buffer.alloc(512);
    h.write(f.name, 0, 100, 'utf8');
    const oct = (n: number, len: number) => `${n.toString(8).padStart(len - 1, '0')}\0`;
    h.write(oct(f.mode, 8), 100);
    h.write(oct(0, 8), 108); // uid
    h.write(oct(0, 8), 116); // gid
    h.write(oct(f.data.length, 12), 124);
    h.write(oct(0, 12), 136); // mtime: the epoch, so an archive depends on its contents alone
    h.write('        ', 148); // checksum placeholder
    h.write('0', 156); // regular file
    h.write('ustar\0', 257);
    h.write('00', 263);
    h.write('root', 265);
    h.write('root', 297);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(h, f.data, Buffer.alloc((512 - (f.data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { platforms: { type: 'string' }, check: { type: 'boolean', default: false } }, strict: true });
  const wanted = (values.platforms ?? process.env.KBG_PLUGIN_PLATFORMS ?? DEFAULT_PLATFORMS.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean) as Platform[];
  for (const p of wanted) if (!/^(linux|darwin)-(x64|arm64)$/.test(p)) throw new Error(`--platforms ${p}: expected linux|darwin-x64|arm64`);
  const version = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version as string;
  const node = nodeVersion();
  const t0 = performance.now();
  rmSync(BIN, { recursive: true, force: true });
  rmSync(KREW, { recursive: true, force: true });
  mkdirSync(BIN, { recursive: true });
  mkdirSync(KREW, { recursive: true });
  const bundles = await bundle();
  writeFileSync(join(BIN, 'kubectl_complete-bg'), COMPLETE_SCRIPT, { mode: 0o755 });
  const license = readFileSync(join(REPO, 'LICENSE'));
  const platforms: KrewPlatform[] = [];
  for (const p of wanted) {
    const exe = await buildExecutable(p, node, bundles);
    const archive = gzipSync(
      tar([
        { name: 'kubectl-bg', data: readFileSync(exe), mode: 0o755 },
        { name: 'kubectl_complete-bg', data: Buffer.from(COMPLETE_SCRIPT), mode: 0o755 },
        { name: 'LICENSE', data: license, mode: 0o644 },
      ]),
      { level: 9 },
    );
    const [os, arch] = p.split('-') as [KrewPlatform['os'], KrewPlatform['arch']];
    const name = archiveName({ os, arch });
    const sum = sha256(archive);
    writeFileSync(join(KREW, name), archive);
    writeFileSync(join(KREW, `${name}.sha256`), `${sum}  ${name}\n`);
    platforms.push({ os, arch, sha256: sum });
    log(`${name}: ${Math.round(archive.length / 2 ** 20)} MB, sha256 ${sum}`);
  }
  const manifest = renderKrewManifest(version, node, platforms);
  writeFileSync(join(KREW, 'bg.yaml'), manifest);
  const committed = existsSync(MANIFEST) ? readFileSync(MANIFEST, 'utf8') : '';
  if (values.check) {
    if (committed !== manifest) {
      log(`plugin/krew/bg.yaml differs from this build's dist/krew/bg.yaml: run npm run plugin:dist and commit it`);
      process.exitCode = 1;
    } else log('plugin/krew/bg.yaml matches this build');
  } else if (committed !== manifest && [...wanted].sort().join() === [...DEFAULT_PLATFORMS].sort().join()) {
    // Only a build of every platform renders the committed manifest (the e2e builds the host's alone).
    writeFileSync(MANIFEST, manifest);
    log('rendered plugin/krew/bg.yaml');
  }
  log(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${wanted.map((p) => `dist/bin/kubectl-bg-${p}`).join(', ')}`);
}

await main();
