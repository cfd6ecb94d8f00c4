// Certificates for the local control plane and for test servers (webhooks),
// made with the openssl CLI: one CA signs everything. Keys are RSA 2048, made
// by node:crypto (PKCS#8 PEM), which openssl and the Go components all accept.
import { execFile } from 'node:child_process';
import { generateKeyPair, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const generateKeyPairP = promisify(generateKeyPair);

/** A PEM certificate and its PEM private key. */
export interface KeyPair {
  certPem: string;
  keyPem: string;
}

export interface CertRequest {
  commonName: string;
  /** Subject O= (e.g. "system:masters" for a cluster-admin client certificate). */
  organization?: string;
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  /** Extended key usage: serverAuth, clientAuth or both. */
  usage: 'server' | 'client' | 'both';
  days?: number;
}

/** A new RSA 2048 private key, PKCS#8 PEM. */
export async function generateKey(): Promise<string> {
  const { privateKey } = await generateKeyPairP('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return privateKey;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await execFileP('openssl', args, { cwd });
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`openssl ${args[0]} failed: ${err.stderr?.trim() || err.message}`, { cause: e });
  }
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'kbg-pki-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function subject(cn: string, o?: string): string {
  const esc = (s: string) => s.replace(/[/\\=+]/g, (c) => `\\${c}`);
  return `${o ? `/O=${esc(o)}` : ''}/CN=${esc(cn)}`;
}

/** A self-signed CA certificate (basicConstraints CA:TRUE). */
export async function generateCA(commonName: string, days = 3650): Promise<KeyPair> {
  const keyPem = await generateKey();
  return withTempDir(async (dir) => {
    await writeFile(join(dir, 'ca.key'), keyPem, { mode: 0o600 });
    await openssl(
      [
        'req',
        '-x509',
        '-new',
        '-key',
        'ca.key',
        '-sha256',
        '-days',
        String(days),
        '-subj',
        subject(commonName),
        '-out',
        'ca.crt',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
      ],
      dir,
    );
    return { certPem: await readFile(join(dir, 'ca.crt'), 'utf8'), keyPem };
  });
}

/** A leaf certificate signed by `ca`, with the given SANs and extended key usage. */
export async function issueCert(ca: KeyPair, req: CertRequest): Promise<KeyPair> {
  const keyPem = await generateKey();
  const eku = { server: 'serverAuth', client: 'clientAuth', both: 'serverAuth,clientAuth' }[req.usage];
  const sans = [...(req.dnsNames ?? []).map((d) => `DNS:${d}`), ...(req.ipAddresses ?? []).map((ip) => `IP:${ip}`)];
  const ext = [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage=${eku}`,
    ...(sans.length ? [`subjectAltName=${sans.join(',')}`] : []),
  ].join('\n');
  return withTempDir(async (dir) => {
    await Promise.all([
      writeFile(join(dir, 'ca.crt'), ca.certPem),
      writeFile(join(dir, 'ca.key'), ca.keyPem, { mode: 0o600 }),
      writeFile(join(dir, 'leaf.key'), keyPem, { mode: 0o600 }),
      writeFile(join(dir, 'leaf.ext'), `${ext}\n`),
    ]);
    await openssl(['req', '-new', '-key', 'leaf.key', '-subj', subject(req.commonName, req.organization), '-out', 'leaf.csr'], dir);
    await openssl(
      [
        'x509',
        '-req',
        '-in',
        'leaf.csr',
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        // A random serial instead of -CAcreateserial: no shared ca.srl, so certificates can be issued in parallel.
        '-set_serial',
        `0x${randomBytes(16)
          .toString('hex')
          .replace(/^[89a-f]/, '1')}`,
        '-days',
        String(req.days ?? 3650),
        '-sha256',
        '-extfile',
        'leaf.ext',
        '-out',
        'leaf.crt',
      ],
      dir,
    );
    return { certPem: await readFile(join(dir, 'leaf.crt'), 'utf8'), keyPem };
  });
}
