// Commands quoted in messages, written the same way everywhere.

/** ` -n NS` for a command quoted in a message; left out for "default", as kubectl users write it. */
export function nsFlag(ns: string): string {
  return ns === 'default' ? '' : ` -n ${ns}`;
}
