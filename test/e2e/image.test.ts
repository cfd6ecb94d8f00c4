// The container image, built and run here (no Docker engine): `npm run image`
// (scripts/image/build.sh) builds the Dockerfile with buildah into an OCI archive; this file
// unpacks it (skopeo + umoci), looks inside, and runs it with crun the way the chart runs it:
// read-only root filesystem, UID/GID 65532, no capability, a tmpfs at /tmp, and a kubeconfig for
// the local control plane, which it must reach and sync from. Needs root (buildah, chroot, a
// mount namespace); scripts/image/ensure-tools.sh installs the tools from Debian's packages.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, copyFileSync, existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { clusterEnv, createNamespace, waitFor, type TestNamespace } from './helpers/cluster.ts';
import { runProcess, runProcessOk } from './helpers/plugin-cli.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const RUN = randomBytes(3).toString('hex');
const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string; devDependencies: Record<string, string> };
const META = path.join(REPO, 'dist/image', `kube-bluegreen-${pkg.version}.json`);
const MiB = 1024 * 1024;
const log = (msg: string) => process.stderr.write(`[image] ${msg}\n`);

const run = (cmd: string, args: string[], timeoutMs: number) => runProcess(cmd, args, process.env, timeoutMs, REPO);
const runOk = (cmd: string, args: string[], timeoutMs: number) => runProcessOk(cmd, args, process.env, timeoutMs, REPO);

function request(port: number, method: 'GET' | 'POST', p: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, method, path: p, rejectUnauthorized: false, timeout: 3000, headers: body ? { 'content-type': 'application/json' } : {} },
      (res) => {
        let b = '';
        res.on('data', (d: Buffer) => (b += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Every path in the tree (relative, with a leading /), symlinks not followed. */
function walk(root: string): { path: string; mode: number; isFile: boolean; isDir: boolean; isLink: boolean; size: number }[] {
  const out: ReturnType<typeof walk> = [];
  const visit = (rel: string) => {
    for (const name of readdirSync(path.join(root, rel))) {
      const r = `${rel}/${name}`;
      const s = lstatSync(path.join(root, r));
      out.push({ path: r, mode: s.mode, isFile: s.isFile(), isDir: s.isDirectory(), isLink: s.isSymbolicLink(), size: s.size });
      if (s.isDirectory()) visit(r);
    }
  };
  visit('');
  return out;
}

describe('the container image (npm run image)', () => {
  let dir = '';
  let rootfs = '';
  let meta: { ref: string; archive: string; digest: string; archiveBytes: number; bases: string; runtimeBase: string; buildSeconds: number };
  let config: { config: { User?: string; Entrypoint?: string[]; Cmd?: string[]; Env?: string[]; WorkingDir?: string; ExposedPorts?: Record<string, unknown> } };
  let files: ReturnType<typeof walk> = [];
  let ns: TestNamespace | undefined;

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('building and running the image needs root (buildah, chroot, a mount namespace): run as root, as CI does');
    const t0 = Date.now();
    await runOk('bash', ['scripts/image/build.sh'], 1_500_000);
    meta = JSON.parse(readFileSync(META, 'utf8'));
    log(`npm run image: ${((Date.now() - t0) / 1000).toFixed(0)} s (buildah bud ${meta.buildSeconds} s; bases: ${meta.bases})`);
    dir = mkdtempSync(path.join(tmpdir(), 'kbg-image-'));
    await runOk('skopeo', ['copy', '--quiet', `oci-archive:${meta.archive}`, `oci:${dir}/layout:image`], 120_000);
    await runOk('umoci', ['unpack', '--image', `${dir}/layout:image`, `${dir}/bundle`], 120_000);
    rootfs = path.join(dir, 'bundle/rootfs');
    files = walk(rootfs);
    const blob = (d: string) => JSON.parse(readFileSync(path.join(dir, 'layout/blobs', ...d.split(':')), 'utf8'));
    const index = blob(JSON.parse(readFileSync(path.join(dir, 'layout/index.json'), 'utf8')).manifests[0].digest);
    config = blob(index.config.digest);
  }, 1_800_000);

  afterAll(async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    await ns?.cleanup();
  });

  it("is the chart's default image, configured as the Dockerfile says, and small", () => {
    const values = parse(readFileSync(path.join(REPO, 'charts/kube-bluegreen/values.yaml'), 'utf8')) as { image: { repository: string; tag: string } };
    const chart = parse(readFileSync(path.join(REPO, 'charts/kube-bluegreen/Chart.yaml'), 'utf8')) as { appVersion: string };
    expect(meta.ref).toBe(`${values.image.repository}:${values.image.tag || chart.appVersion}`);
    expect(config.config.User).toBe('65532:65532');
    expect(config.config.Entrypoint).toEqual(['/nodejs/bin/node', 'dist/src/webhook/main.js']);
    expect(config.config.WorkingDir).toBe('/app');
    expect(Object.keys(config.config.ExposedPorts ?? {})).toEqual(['9443/tcp']);
    expect(config.config.Env).toContain('NODE_ENV=production');

    const unpacked = files.filter((f) => f.isFile).reduce((n, f) => n + f.size, 0);
    const node = statSync(path.join(rootfs, 'nodejs/bin/node')).size;
    const modules = files.filter((f) => f.isFile && f.path.startsWith('/app/node_modules/')).reduce((n, f) => n + f.size, 0);
    log(
      `size: OCI archive ${(meta.archiveBytes / MiB).toFixed(1)} MiB (compressed layers); unpacked root ${(unpacked / MiB).toFixed(1)} MiB ` +
        `(node ${(node / MiB).toFixed(1)}, node_modules ${(modules / MiB).toFixed(1)}, the rest ${((unpacked - node - modules) / MiB).toFixed(1)}); ${files.length} entries`,
    );
    // Node alone is ~120 MiB unpacked; a regression (dev dependencies, a second Node, a
    // toolchain) would show here.
    expect(meta.archiveBytes).toBeLessThan(90 * MiB);
    expect(unpacked).toBeLessThan(280 * MiB);
  });

  it('has no shell, no package manager and no program but node', () => {
    const SHELLS = new Set(['sh', 'bash', 'dash', 'ash', 'zsh', 'ksh', 'mksh', 'csh', 'tcsh', 'fish', 'busybox', 'toybox']);
    const MANAGERS = new Set(['apt', 'apt-get', 'apt-cache', 'dpkg', 'dpkg-deb', 'rpm', 'yum', 'dnf', 'apk', 'npm', 'npx', 'corepack', 'yarn', 'pnpm']);
    expect(files.filter((f) => SHELLS.has(path.basename(f.path))).map((f) => f.path)).toEqual([]);
    expect(files.filter((f) => MANAGERS.has(path.basename(f.path))).map((f) => f.path)).toEqual([]);
    for (const p of ['/bin', '/sbin', '/usr/bin', '/usr/sbin', '/var/lib/dpkg', '/etc/apt', '/usr/lib/node_modules', '/usr/local/lib/node_modules'])
      expect(existsSync(path.join(rootfs, p)), p).toBe(false);
    // Executable files: shared libraries, node, and the scripts of packages (bin entries, which
    // nothing can start without a shell or /usr/bin/env).
    const executables = files.filter((f) => f.isFile && f.mode & 0o111 && !/\.so(\.\d+)*$/.test(f.path) && !f.path.startsWith('/app/node_modules/'));
    expect(executables.map((f) => f.path)).toEqual(['/nodejs/bin/node']);
    // Nothing set-uid or set-gid.
    expect(files.filter((f) => f.mode & 0o6000).map((f) => f.path)).toEqual([]);
  });

  it('holds the webhook and its production dependencies only: no dev dependency, no source, no test', () => {
    const lock = JSON.parse(readFileSync(path.join(REPO, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; optional?: boolean }> };
    const entries = Object.entries(lock.packages).filter(([k]) => k.startsWith('node_modules/'));
    const allowed = new Set(entries.filter(([, v]) => !v.dev).map(([k]) => `/app/${k}`));
    const required = entries.filter(([, v]) => !v.dev && !v.optional).map(([k]) => `/app/${k}`);
    // A package root: a directory under a node_modules directory (a scope's child if scoped).
    const installed = files
      .filter((f) => f.isDir && /\/node_modules\/(@[^/]+\/)?[^/@][^/]*$/.test(f.path) && existsSync(path.join(rootfs, f.path, 'package.json')))
      .map((f) => f.path);
    expect(installed.filter((p) => !allowed.has(p))).toEqual([]);
    expect(required.filter((p) => !installed.includes(p))).toEqual([]);
    // The project's dev dependencies in particular; @types/node is also a production dependency
    // of @kubernetes/client-node, so the lockfile (not package.json) says which may be there.
    const devOnly = Object.keys(pkg.devDependencies).filter((d) => lock.packages[`node_modules/${d}`]?.dev);
    expect(devOnly).toEqual(expect.arrayContaining(['typescript', 'vitest', 'autocannon', 'node']));
    for (const d of devOnly) expect(existsSync(path.join(rootfs, 'app/node_modules', d)), d).toBe(false);
    // No empty leftovers of pruned dev dependencies (scope directories).
    expect(
      readdirSync(path.join(rootfs, 'app/node_modules')).filter((n) => n.startsWith('@') && readdirSync(path.join(rootfs, 'app/node_modules', n)).length === 0),
    ).toEqual([]);
    log(`node_modules: ${installed.length} packages, all production (${entries.length - allowed.size} dev-only packages in the lockfile, none inside)`);

    expect(readdirSync(path.join(rootfs, 'app')).sort()).toEqual(['dist', 'node_modules', 'package.json']);
    expect(readdirSync(path.join(rootfs, 'app/dist'))).toEqual(['src']);
    expect(existsSync(path.join(rootfs, 'app/dist/src/webhook/main.js'))).toBe(true);
    expect(files.filter((f) => f.path.startsWith('/app/dist/') && /\.test\.|\.ts$/.test(f.path) && !f.path.endsWith('.d.ts')).map((f) => f.path)).toEqual([]);
    // Root owns everything the webhook runs; UID 65532 can change none of it.
    expect(
      files.filter((f) => f.path.startsWith('/app') && (lstatSync(path.join(rootfs, f.path)).uid !== 0 || (!f.isLink && f.mode & 0o022))).map((f) => f.path),
    ).toEqual([]);
  });

  describe('run with crun: read-only root, UID 65532, no capability, a tmpfs at /tmp', () => {
    let child: ChildProcess | undefined;
    let logs = '';
    const state = () => path.join(dir, 'crun-state');
    const name = `kbg-image-${RUN}`;

    afterAll(async () => {
      if (child && child.exitCode === null) {
        await run('crun', ['--root', state(), 'kill', name, 'KILL'], 10_000);
        await new Promise((r) => child?.once('close', r));
      }
      if (dir) await run('crun', ['--root', state(), 'delete', '--force', name], 10_000);
    });

    it(
      'answers /healthz, syncs from the apiserver (/readyz), answers an AdmissionReview, writes only to /tmp, and stops on SIGTERM',
      { timeout: 120_000 },
      async () => {
        ns = await createNamespace('image');
        const bundle = path.join(dir, 'bundle');
        const spec = JSON.parse(readFileSync(path.join(bundle, 'config.json'), 'utf8'));
        // The image's own USER, as umoci turned it into the runtime spec.
        expect(spec.process.user).toMatchObject({ uid: 65532, gid: 65532 });
        // The cluster-admin kubeconfig of the local control plane, readable by 65532 only.
        const kubeconfig = path.join(dir, 'kubeconfig');
        copyFileSync(clusterEnv().kubeconfig, kubeconfig);
        chownSync(kubeconfig, 65532, 65532);
        const port = 20_000 + Math.floor(Math.random() * 20_000);
        spec.process.terminal = false;
        spec.process.args = [
          ...spec.process.args,
          '--kubeconfig=/etc/kube-bluegreen/kubeconfig',
          `--listen=127.0.0.1:${port}`,
          '--self-signed',
          `--namespace=${ns.name}`,
          `--leader-election-id=image-${RUN}`,
          '--shutdown-delay=1',
        ];
        spec.process.capabilities = { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] };
        spec.process.noNewPrivileges = true;
        spec.root.readonly = true;
        // The host's network (the apiserver listens on loopback); every other namespace its own.
        spec.linux.namespaces = spec.linux.namespaces.filter((n: { type: string }) => n.type !== 'network');
        spec.mounts.push(
          { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', 'mode=1777', 'size=16m'] },
          { destination: '/etc/kube-bluegreen/kubeconfig', type: 'bind', source: kubeconfig, options: ['bind', 'ro', 'nosuid', 'nodev', 'noexec'] },
        );
        writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec, null, 2));

        // crun 1.8 refuses cgroup "hybrid" hosts (v1 controllers and a v2 hierarchy with a
        // controller, as on this VM); it creates no cgroup here anyway (--cgroup-manager=disabled),
        // so the v2 mount is hidden from it, in a mount namespace of its own.
        const script = [
          'if grep -qs . /sys/fs/cgroup/unified/cgroup.controllers; then umount -l /sys/fs/cgroup/unified; fi',
          `exec crun --root ${state()} --cgroup-manager=disabled run --bundle ${bundle} ${name}`,
        ].join('\n');
        child = spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
        child.stdout?.on('data', (d: Buffer) => (logs += d.toString()));
        child.stderr?.on('data', (d: Buffer) => (logs += d.toString()));
        const exited = new Promise<number | null>((resolve) => child?.once('close', (code) => resolve(code)));
        const t0 = Date.now();

        // Until it answers 200; a container that exits, or a timeout, fails with its output.
        const until200 = async (p: string) => {
          try {
            await waitFor(async () => child?.exitCode !== null || (await request(port, 'GET', p).catch(() => ({ status: 0 }))).status === 200, {
              timeoutMs: 30_000,
            });
          } catch (e) {
            throw new Error(`${p}: ${(e as Error).message}; output:\n${logs.slice(-3000)}`, { cause: e });
          }
          if (child?.exitCode !== null) throw new Error(`the container exited (${child?.exitCode}) before ${p} answered; output:\n${logs.slice(-3000)}`);
        };
        await until200('/healthz');
        const healthMs = Date.now() - t0;
        await until200('/readyz');
        log(`crun: /healthz after ${healthMs} ms, /readyz (cache synced from the apiserver) after ${Date.now() - t0} ms`);
        const fixture = JSON.parse(readFileSync(path.join(REPO, 'test/fixtures/admission/service-purple.1.validate.json'), 'utf8'));
        const answer = await request(port, 'POST', '/validate', JSON.stringify(fixture.review));
        expect(answer.status).toBe(200);
        expect(JSON.parse(answer.body).response).toMatchObject({ uid: fixture.review.request.uid, allowed: expect.any(Boolean) });
        expect((await request(port, 'GET', '/metrics')).body).toContain('kube_bluegreen_admission_requests_total');

        const pid = JSON.parse(await runOk('crun', ['--root', state(), 'state', name], 10_000)).pid as number;
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        expect(status).toMatch(/^Uid:\s+65532\s+65532\s+65532\s+65532$/m);
        expect(status).toMatch(/^Gid:\s+65532\s+65532\s+65532\s+65532$/m);
        expect(status).toMatch(/^CapEff:\s+0+$/m);
        // Its mounts: the root is read-only, and the only writable filesystem that is not a kernel
        // interface (/proc, /dev, /sys) is /tmp.
        const mounts = readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
          .trim()
          .split('\n')
          .map((l) => l.split(' '))
          .map((f) => ({ at: f[4]!, rw: f[5]!.split(',').includes('rw') }));
        expect(mounts.find((m) => m.at === '/')?.rw).toBe(false);
        expect(mounts.filter((m) => m.rw && !/^\/(proc|dev|sys)(\/|$)/.test(m.at)).map((m) => m.at)).toEqual(['/tmp']);
        const inTmp = readdirSync(`/proc/${pid}/root/tmp`);
        log(
          `written to /tmp while serving: ${inTmp.length ? inTmp.join(', ') : 'nothing'}; no EROFS in the log: ${!/EROFS|read-only file system/i.test(logs)}`,
        );
        expect(logs).not.toMatch(/EROFS|read-only file system/i);

        const t1 = Date.now();
        await runOk('crun', ['--root', state(), 'kill', name, 'TERM'], 10_000);
        expect(await exited).toBe(0);
        log(`SIGTERM to exit 0: ${Date.now() - t1} ms (shutdown delay 1 s)`);
        expect(logs).toContain('"msg":"stopped"');
      },
    );
  });
});
