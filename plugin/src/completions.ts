// Shell completion, in the protocol kubectl (1.26+) uses for plugins: kubectl
// runs `kubectl_complete-bg ARGS... CURRENT` and reads one completion per line
// (optionally "value<TAB>description"), then a line ":<directive>" (Cobra's
// ShellCompDirective). `kubectl bg __complete ...` answers the same for the
// scripts `kubectl bg completion bash|zsh` prints.
import type { Command, Option } from 'commander';
import { APP_LABEL } from '../../src/core/labels.ts';
import { listApps } from './app-objects.ts';
import type { Context } from './context.ts';

/** Cobra's ShellCompDirective values. */
export const DIRECTIVE = { default: 0, noSpace: 2, noFileComp: 4 } as const;

export interface Completions {
  items: string[];
  directive: number;
}

function takesValue(o: Option): boolean {
  return o.required || o.optional;
}

function findOption(cmds: readonly Command[], flag: string): Option | undefined {
  for (const c of cmds) for (const o of c.options) if (o.long === flag || o.short === flag) return o;
  return undefined;
}

/** The completions for `kubectl bg <args...> <toComplete>`. */
export async function complete(program: Command, args: readonly string[], ctx: Context): Promise<Completions> {
  const words = args.slice(0, -1);
  const current = args[args.length - 1] ?? '';
  let verb: Command | undefined;
  const positionals: string[] = [];
  const values = new Map<string, string>();
  let pending: Option | undefined;
  for (const w of words) {
    const scope = verb ? [verb, program] : [program];
    if (pending) {
      values.set(pending.attributeName(), w);
      pending = undefined;
      continue;
    }
    if (w.startsWith('-') && w !== '-') {
      const [flag, inline] = w.split('=', 2) as [string, string | undefined];
      const o = findOption(scope, flag);
      if (o && takesValue(o)) {
        if (inline !== undefined) values.set(o.attributeName(), inline);
        else pending = o;
      }
      continue;
    }
    if (!verb) {
      verb = program.commands.find((c) => c.name() === w || c.aliases().includes(w));
      if (!verb) return { items: [], directive: DIRECTIVE.noFileComp };
    } else positionals.push(w);
  }
  const prefixed = (xs: readonly string[]) => xs.filter((x) => x.startsWith(current));
  const scope = verb ? [verb, program] : [program];

  if (pending) return valueCompletions(pending, values, ctx, prefixed);

  if (current.startsWith('-')) {
    const flags: string[] = [];
    for (const c of scope)
      for (const o of c.options) {
        if (o.hidden) continue;
        const desc = o.description ? `\t${o.description}` : '';
        if (o.long) flags.push(`${o.long}${desc}`);
        if (o.short) flags.push(`${o.short}${desc}`);
      }
    flags.push('--help\tdisplay help');
    return { items: flags.filter((f) => f.startsWith(current)), directive: DIRECTIVE.noFileComp };
  }

  if (!verb) {
    const verbs = program.commands.map((c) => `${c.name()}\t${c.description()}`);
    return { items: prefixed(verbs), directive: DIRECTIVE.noFileComp };
  }
  const name = verb.name();
  if (name === 'completion') return { items: positionals.length ? [] : prefixed(['bash', 'zsh']), directive: DIRECTIVE.noFileComp };
  if (positionals.length > 0 || !['status', 'switch', 'rollback', 'history', 'abort', 'init'].includes(name))
    return { items: [], directive: DIRECTIVE.noFileComp };
  try {
    const cluster = await ctx.connect({ kubeconfig: values.get('kubeconfig'), context: values.get('context') });
    try {
      const ns = values.get('namespace') || cluster.defaultNamespace || 'default';
      const apps = (await listApps(cluster, ns)).map((a) => a.app);
      if (name === 'init') {
        // A new app's name: suggest the Deployments not enrolled yet.
        const deps = await cluster.listDeployments(ns);
        return {
          items: prefixed(deps.filter((d) => !d.metadata.labels?.[APP_LABEL]).map((d) => d.metadata.name ?? '')),
          directive: DIRECTIVE.noFileComp,
        };
      }
      return { items: prefixed(apps), directive: DIRECTIVE.noFileComp };
    } finally {
      cluster.close();
    }
  } catch {
    return { items: [], directive: DIRECTIVE.noFileComp };
  }
}

async function valueCompletions(o: Option, values: Map<string, string>, ctx: Context, prefixed: (xs: readonly string[]) => string[]): Promise<Completions> {
  const fixed: Record<string, string[]> = { output: ['json', 'yaml', 'wide'], to: ['blue', 'green'] };
  const attr = o.attributeName();
  if (fixed[attr]) return { items: prefixed(fixed[attr]), directive: DIRECTIVE.noFileComp };
  if (attr === 'kubeconfig') return { items: [], directive: DIRECTIVE.default }; // files
  if (!['namespace', 'from', 'service'].includes(attr)) return { items: [], directive: DIRECTIVE.noFileComp };
  try {
    const cluster = await ctx.connect({ kubeconfig: values.get('kubeconfig'), context: values.get('context') });
    try {
      const ns = values.get('namespace') || cluster.defaultNamespace || 'default';
      let items: string[] = [];
      if (attr === 'namespace') items = await cluster.listNamespaces();
      else if (attr === 'from') items = (await cluster.listDeployments(ns)).map((d) => `deployment/${d.metadata.name}`);
      else items = (await cluster.listServices(ns)).map((s) => s.metadata.name ?? '');
      return { items: prefixed(items), directive: DIRECTIVE.noFileComp };
    } finally {
      cluster.close();
    }
  } catch {
    return { items: [], directive: DIRECTIVE.noFileComp };
  }
}

export function formatCompletions(c: Completions): string {
  return [...c.items, `:${c.directive}`].map((l) => `${l}\n`).join('');
}
