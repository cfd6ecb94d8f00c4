// npm run cluster:down — stops every process cluster:up started and removes its data.
import { down } from './control-plane.ts';

try {
  await down();
} catch (e) {
  process.stderr.write(`cluster:down failed: ${(e as Error).message}\n`);
  process.exitCode = 1;
}
