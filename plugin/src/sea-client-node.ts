// Stands in for @kubernetes/client-node inside the single executable (scripts/plugin-dist.ts
// aliases the package to this file). Bundled, client-node is 18 MB of JavaScript, which
// would cost every run about 200 ms to load; it is needed only for what the project's
// kubeconfig reader leaves to it (auth-provider, proxy-url). So it travels as an asset of
// the executable, and this module, evaluated only when the client imports client-node,
// compiles it then.
import { createRequire } from 'node:module';
import { getAsset } from 'node:sea';
import vm from 'node:vm';

type ClientNode = typeof import('@kubernetes/client-node');

function load(): ClientNode {
  const source = getAsset('client-node.cjs', 'utf8');
  const wrapper = vm.runInThisContext(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: 'client-node.cjs',
  }) as (e: object, r: NodeJS.Require, m: { exports: object }, f: string, d: string) => void;
  const mod = { exports: {} };
  wrapper(mod.exports, createRequire(process.execPath), mod, 'client-node.cjs', '.');
  return mod.exports as ClientNode;
}

export const { KubeConfig } = load();
