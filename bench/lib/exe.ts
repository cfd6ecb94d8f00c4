// The plugin's single executable for this machine (dist/bin/kubectl-bg-<os>-<arch>), built by
// scripts/plugin-dist.ts for the host alone at the start of a bench run (about 15 s), so the
// figures are of the sources as they are; KBG_BENCH_REBUILD_EXE=0 reuses one that exists.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { progress } from './context.ts';
import { REPO } from './server-proc.ts';

export const NODE = join(REPO, 'node_modules/.bin/node');
export const PLUGIN = join(REPO, 'plugin/src/main.ts');
export const EXE = join(REPO, `dist/bin/kubectl-bg-${process.platform}-${process.arch}`);

let built = false;
export function ensureExe(): string {
  if (built) return EXE;
  if (!existsSync(EXE) || process.env.KBG_BENCH_REBUILD_EXE !== '0') {
    progress(`building ${EXE} (scripts/plugin-dist.ts --platforms ${process.platform}-${process.arch})`);
    execFileSync(NODE, [join(REPO, 'scripts/plugin-dist.ts'), '--platforms', `${process.platform}-${process.arch}`], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }
  built = true;
  return EXE;
}
