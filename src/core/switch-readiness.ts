// May the active Service send an app's traffic to a colour now? One rule for the webhook (a
// selector patch on the active Service, with verified check records) and `kubectl bg switch` /
// `rollback` (the plan, with unverified ones to say why early): no change pending on the colour
// (a recorded change still to land and roll out), its pre-switch check passed where the app has
// one, and the colour fully rolled out and available at the live replica count.
import type { AppView } from './app.ts';
import { readyToServe } from './availability.ts';
import { type CheckReader, preSwitchCheckGate } from './checks.ts';
import type { Deployment } from './k8s-types.ts';
import type { Colour } from './labels.ts';
import { pendingSwitchBlocker } from './pending-change.ts';

export type SwitchReadiness =
  | { ok: true }
  | {
      ok: false;
      /** pending: a change to land first; checking / check-failed: the pre-switch check; not-ready: rollout or availability. */
      blocker: 'pending' | 'checking' | 'check-failed' | 'not-ready';
      reason: string;
    };

/**
 * Whether `target`, the Deployment of `to`, may take the traffic at `required` replicas. `checkView`
 * is the app whose history judges the pre-switch check's exemption for a rollback: the webhook's is
 * the Service as stored, not as the request would make it (its own record appended); default `view`.
 */
export function switchReadiness(
  view: AppView,
  to: Colour,
  target: Deployment,
  required: number,
  now: Date,
  read: CheckReader,
  checkView: AppView = view,
): SwitchReadiness {
  const pending = pendingSwitchBlocker(view, to, now);
  if (pending) return { ok: false, blocker: 'pending', reason: pending };
  const gate = preSwitchCheckGate(checkView, to, read);
  if (gate) return { ok: false, blocker: gate.state === 'failed' ? 'check-failed' : 'checking', reason: gate.reason };
  const ready = readyToServe(target, required);
  return ready.ok ? ready : { ok: false, blocker: 'not-ready', reason: ready.reason };
}
