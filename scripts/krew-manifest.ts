// Renders plugin/krew/bg.yaml from what `npm run plugin:dist` built: one platform per
// archive, with its real sha256 and the URI where a release publishes it. Kept apart from
// the build so a unit test can render it without building anything.
export const HOMEPAGE = 'https://github.com/kube-bluegreen/kube-bluegreen';

export interface KrewPlatform {
  os: 'linux' | 'darwin';
  arch: 'x64' | 'arm64';
  sha256: string;
}

export type Platform = `${KrewPlatform['os']}-${KrewPlatform['arch']}`;
/**
 * What plugin:dist builds by default: the Linux ELF executables, which need no signature.
 * Darwin is left out: the npm registry has no Node 24 for darwin-arm64 and only an older 24.x
 * for darwin-x64, and an injected Mach-O must be re-signed (codesign), which this Linux
 * build cannot do; `--platforms darwin-x64` tries anyway.
 */
export const DEFAULT_PLATFORMS: Platform[] = ['linux-x64', 'linux-arm64'];

/** krew (and Go) names the architectures amd64 and arm64; Node names x64 and arm64. */
export const goArch = (arch: KrewPlatform['arch']) => (arch === 'x64' ? 'amd64' : 'arm64');
export const archiveName = (p: Pick<KrewPlatform, 'os' | 'arch'>) => `kubectl-bg-${p.os}-${p.arch}.tar.gz`;
export const releaseUri = (version: string, p: Pick<KrewPlatform, 'os' | 'arch'>) => `${HOMEPAGE}/releases/download/v${version}/${archiveName(p)}`;

/** The files of each archive (krew copies them into the plugin's directory; bin is linked on PATH). */
export const ARCHIVE_FILES = ['kubectl-bg', 'kubectl_complete-bg', 'LICENSE'] as const;

export function renderKrewManifest(version: string, nodeVersion: string, platforms: readonly KrewPlatform[]): string {
  const sorted = [...platforms].sort((a, b) => `${a.os}-${a.arch}`.localeCompare(`${b.os}-${b.arch}`));
  const lines = [
    '# krew plugin manifest for `kubectl bg` (https://krew.sigs.k8s.io/docs/developer-guide/plugin-manifest/).',
    '# Rendered by `npm run plugin:dist` (scripts/plugin-dist.ts) from the archives it built in dist/krew/:',
    `# kubectl-bg is a single executable (Node.js ${nodeVersion} embedded, no Node needed on the machine),`,
    '# kubectl_complete-bg a two-line shell script that runs `kubectl-bg __complete`. Do not edit by hand:',
    '# a release runs plugin:dist at its tag, commits this file and uploads the archives to the URIs below.',
    'apiVersion: krew.googlecontainers.com/v1alpha2',
    'kind: Plugin',
    'metadata:',
    '  name: bg',
    'spec:',
    `  version: v${version}`,
    `  homepage: ${HOMEPAGE}`,
    '  shortDescription: Blue-green deployments with two Deployments and one Service',
    '  description: |',
    '    kubectl bg runs blue-green deployments on plain Kubernetes objects: an app is',
    '    two ordinary Deployments (blue and green) and one Service whose selector',
    '    names the live colour. The plugin shows where each app stands (live colour,',
    '    images, ready replicas, phase, last switch), switches the Service to the',
    '    idle colour once it is fully rolled out, rolls back, enrols an existing',
    '    Deployment (init), and lists and aborts rollouts. It works with the',
    '    kube-bluegreen admission webhook, which redirects changes to the live colour',
    '    to the idle one.',
    '  caveats: |',
    '    kubectl bg acts on apps labelled bluegreen.io/app. Install the',
    '    kube-bluegreen webhook (Helm chart in charts/) so that `kubectl set image`',
    '    on the live colour rolls out the idle colour instead.',
    '    Shell completion of `kubectl bg` needs kubectl 1.26 or later and',
    '    kubectl_complete-bg on PATH; krew links only kubectl-bg, so link it too:',
    `    ln -s ~/.krew/store/bg/v${version}/kubectl_complete-bg ~/.krew/bin/`,
    '  platforms:',
  ];
  for (const p of sorted) {
    if (!/^[0-9a-f]{64}$/.test(p.sha256)) throw new Error(`${p.os}-${p.arch}: sha256 ${JSON.stringify(p.sha256)} is not a sha256`);
    lines.push(
      '    - selector:',
      '        matchLabels:',
      `          os: ${p.os}`,
      `          arch: ${goArch(p.arch)}`,
      `      uri: ${releaseUri(version, p)}`,
      `      sha256: "${p.sha256}"`,
      '      bin: kubectl-bg',
      '      files:',
      ...ARCHIVE_FILES.flatMap((f) => [`        - from: ${f}`, '          to: .']),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The platforms and sha256 sums of a rendered manifest (to re-render it, or to compare). */
export function parseKrewManifest(text: string): { version: string; platforms: KrewPlatform[] } {
  const version = /^ {2}version: v(\S+)$/m.exec(text)?.[1];
  if (!version) throw new Error('no spec.version');
  const platforms: KrewPlatform[] = [];
  const re = /os: (linux|darwin)\n {10}arch: (amd64|arm64)\n {6}uri: \S+\n {6}sha256: "([^"]*)"/g;
  for (const m of text.matchAll(re)) platforms.push({ os: m[1] as KrewPlatform['os'], arch: m[2] === 'amd64' ? 'x64' : 'arm64', sha256: m[3]! });
  return { version, platforms };
}
