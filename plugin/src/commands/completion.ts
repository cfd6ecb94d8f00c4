// kubectl bg completion bash|zsh: a script completing the `kubectl-bg` command.
// `kubectl bg <TAB>` itself is completed by kubectl (1.26+) through the
// `kubectl_complete-bg` executable installed next to `kubectl-bg`.
import type { Command } from 'commander';
import type { Context } from '../context.ts';
import { EXIT, usageError } from '../exit-codes.ts';

export const BASH = `# bash completion for kubectl-bg                         -*- shell-script -*-
# Load it with:  source <(kubectl bg completion bash)
# 'kubectl bg <TAB>' is completed by kubectl itself (1.26+) through the
# kubectl_complete-bg executable that 'npm i -g kube-bluegreen' installs.
_kubectl_bg() {
    local cur="\${COMP_WORDS[COMP_CWORD]}"
    local out line directive=0
    local -a comps=()
    out=$(kubectl-bg __complete "\${COMP_WORDS[@]:1:COMP_CWORD-1}" "$cur" 2>/dev/null) || return
    while IFS= read -r line; do
        if [[ $line == :* ]]; then directive=\${line#:}; continue; fi
        [[ -n $line ]] && comps+=("\${line%%$'\\t'*}")
    done <<< "$out"
    COMPREPLY=("\${comps[@]}")
    if (( \${#COMPREPLY[@]} == 0 && (directive & 4) == 0 )); then
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}
complete -F _kubectl_bg kubectl-bg
`;

export const ZSH = `#compdef kubectl-bg
# zsh completion for kubectl-bg
# Load it with:  source <(kubectl bg completion zsh)
# 'kubectl bg <TAB>' is completed by kubectl itself (1.26+) through the
# kubectl_complete-bg executable that 'npm i -g kube-bluegreen' installs.
_kubectl_bg() {
    local -a comps
    local line directive=0
    for line in "\${(@f)$(kubectl-bg __complete "\${(@)words[2,CURRENT-1]}" "\${words[CURRENT]}" 2>/dev/null)}"; do
        if [[ $line == :* ]]; then directive=\${line#:}; continue; fi
        [[ -n $line ]] && comps+=("\${\${line//:/\\\\:}/$'\\t'/:}")
    done
    if (( \${#comps} > 0 )); then
        _describe 'kubectl bg' comps
    elif (( (directive & 4) == 0 )); then
        _files
    fi
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _kubectl_bg "$@"
else
    compdef _kubectl_bg kubectl-bg
fi
`;

export function register(program: Command, ctx: Context, done: (code: number) => void): void {
  program
    .command('completion')
    .description('Print a shell completion script for kubectl-bg (bash or zsh)')
    .argument('<shell>', 'bash | zsh')
    .action((shell: string) => {
      if (shell === 'bash') ctx.out.write(BASH);
      else if (shell === 'zsh') ctx.out.write(ZSH);
      else throw usageError(`unsupported shell ${JSON.stringify(shell)}: use bash or zsh`);
      done(EXIT.OK);
    });
}
