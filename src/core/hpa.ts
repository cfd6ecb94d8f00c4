// An app with a HorizontalPodAutoscaler: one HPA per app, which follows the live colour. Its
// scaleTargetRef names the live Deployment; after a switch or a rollback the reconciler points it
// at the new live Deployment (what the active Service selects), and while the idle colour is being
// prepared it keeps that colour at the live colour's replicas, so the gate (the live Deployment's
// spec.replicas, which the HPA writes) passes without --force. An HPA on the idle colour would
// scale it on the idle colour's own load (none: its minimum) and is not supported: reported, and
// neither retargeted nor fought. Pure: the reconciler performs what planHpa returns.
import type { AppView } from './app.ts';
import { declaredPhrase, declarerOfApp, gitDeclarerOf, helmReleaseOf } from './gitops.ts';
import type { HorizontalPodAutoscaler } from './k8s-types.ts';
import { labelsOf } from './k8s-types.ts';
import { APP_LABEL, type Colour, COLOURS, LIVE_LABEL, RAISED_GENERATION_ANNOTATION } from './labels.ts';
import { annotationPath, escapePointer } from './pending-change.ts';

type JsonOp = { op: 'test' | 'add' | 'replace'; path: string; value?: unknown };

export type HpaAction =
  /** Point the app's HPA at the live Deployment (it still scales the colour that was live before). */
  | { kind: 'retarget-hpa'; hpa: string; from: string; to: string; ops: JsonOp[] }
  /** Raise the idle colour to the replicas the HPA runs the live colour at, so that it can take the load at the switch. */
  | { kind: 'keep-idle-capacity'; deployment: string; hpa: string; from: number; to: number; ops: JsonOp[] };

export interface HpaPlan {
  action?: HpaAction;
  /** What kube-bluegreen will not do about the app's HPAs, and what to do instead: a sentence a person can act on. */
  warning?: string;
}

/** What `kubectl bg status` shows of an HPA. */
export interface HpaStatus {
  name: string;
  /** The Deployment its scaleTargetRef names (kind/name when it is not a Deployment). */
  target: string;
  /** The colour it scales, if its target is one of the app's colours. */
  colour: Colour | null;
  follows: 'live' | 'idle' | null;
  minReplicas: number;
  maxReplicas: number | null;
  currentReplicas: number | null;
  desiredReplicas: number | null;
}

/** The Deployment an HPA scales, by name; undefined when its target is not an apps Deployment. */
export function hpaTargetOf(h: HorizontalPodAutoscaler): string | undefined {
  const ref = h.spec?.scaleTargetRef;
  if (!ref?.name || ref.kind !== 'Deployment') return undefined;
  if (ref.apiVersion !== undefined && !ref.apiVersion.startsWith('apps/')) return undefined;
  return ref.name;
}

/** The colour an HPA scales: the app's Deployment its target names. */
export function colourOfHpa(view: AppView, h: HorizontalPodAutoscaler): Colour | undefined {
  const target = hpaTargetOf(h);
  return target === undefined ? undefined : COLOURS.find((c) => view.deployments[c]?.metadata.name === target);
}

/** The app's HPAs that scale Deployment `name`. */
export function hpasScaling(view: AppView, name: string | undefined): HorizontalPodAutoscaler[] {
  return name === undefined ? [] : view.hpas.filter((h) => hpaTargetOf(h) === name);
}

const hpaName = (h: HorizontalPodAutoscaler) => h.metadata.name ?? '';

/** Who declares an HPA, whose next round would undo a retarget (its own markers, or the app's declarer), as a phrase; undefined: nobody. */
function hpaDeclaredPhrase(view: AppView, h: HorizontalPodAutoscaler): string | undefined {
  const own = gitDeclarerOf(h);
  if (own) return declaredPhrase(own);
  const release = helmReleaseOf(h);
  if (release) return `declared by Helm release ${release}`;
  const app = declarerOfApp(view);
  return app ? `of app ${view.app}, which is ${declaredPhrase(app)}` : undefined;
}

/**
 * Why the app's HPAs cannot be followed (two or more scale its colours), or undefined. Until that
 * is fixed, kube-bluegreen neither retargets them nor scales a colour one of them scales.
 */
export function hpaProblem(view: AppView): string | undefined {
  const onColours = view.hpas.filter((h) => colourOfHpa(view, h) !== undefined);
  if (onColours.length < 2) return undefined;
  const list = onColours.map((h) => `${hpaName(h)} scales ${hpaTargetOf(h)}`).join(', ');
  const idleName = view.idle ? view.deployments[view.idle]?.metadata.name : undefined;
  const onIdle = onColours.filter((h) => hpaTargetOf(h) === idleName).map(hpaName);
  const advice = onIdle.length
    ? `delete ${onIdle.join(', ')} (an HPA on the idle colour scales it on its own load, none before the switch, back to its minimum)`
    : 'keep one and delete the others';
  return (
    `app ${view.app} has ${onColours.length} HorizontalPodAutoscalers on its colours (${list}); kube-bluegreen supports one, ` +
    `which follows the live colour and is retargeted at each switch: ${advice}. Until then it neither retargets them nor scales a colour they scale`
  );
}

/**
 * The next thing to do about the app's HPA. The idle colour is raised also while it is the old colour,
 * warm after a switch: a rollback then finds it at the live count. The raise records the generation it
 * produced (RAISED_GENERATION_ANNOTATION), so that the scale-down still takes it for unchanged.
 */
export function planHpa(view: AppView): HpaPlan {
  const plan = planFollower(view);
  // An HPA labelled for the app that scales something else: said with whatever else is done.
  const stray = view.hpas.find((h) => colourOfHpa(view, h) === undefined);
  if (!stray || plan.warning !== undefined) return plan;
  return {
    ...plan,
    warning: `HorizontalPodAutoscaler ${hpaName(stray)} (label ${APP_LABEL}=${view.app}) scales ${describeTarget(stray)}, which is not a colour of app ${view.app}; kube-bluegreen leaves it alone`,
  };
}

function planFollower(view: AppView): HpaPlan {
  const problem = hpaProblem(view);
  if (problem) return { warning: problem };
  const hpa = view.hpas.find((h) => colourOfHpa(view, h) !== undefined);
  if (!hpa || !view.live || !view.idle || !view.active || view.duplicates.length) return {};
  const live = view.deployments[view.live];
  const idle = view.deployments[view.idle];
  const liveName = live?.metadata.name;
  if (!live || !liveName) return {};
  const declared = hpaDeclaredPhrase(view, hpa);
  const name = hpaName(hpa);

  // 1. It scales the idle colour (the colour that was live before a switch or a rollback): point it at the live one.
  if (colourOfHpa(view, hpa) === view.idle) {
    const from = hpaTargetOf(hpa) ?? '';
    if (declared)
      return {
        warning:
          `HorizontalPodAutoscaler ${name} scales ${from}, the idle colour, and is ${declared}: kube-bluegreen writes nothing declared there. ` +
          `Set its scaleTargetRef.name to ${liveName} there, in the change that switches to ${view.live}`,
      };
    return {
      action: {
        kind: 'retarget-hpa',
        hpa: name,
        from,
        to: liveName,
        ops: [
          { op: 'test', path: '/metadata/resourceVersion', value: hpa.metadata.resourceVersion },
          { op: 'test', path: '/spec/scaleTargetRef/name', value: from },
          { op: 'replace', path: '/spec/scaleTargetRef/name', value: liveName },
        ],
      },
    };
  }

  // 2. It scales the live colour: the idle colour, while it is prepared, keeps as many replicas as the HPA runs the live one at.
  const want = live.spec?.replicas ?? 1;
  const have = idle?.spec?.replicas ?? 0;
  const idleName = idle?.metadata.name;
  if (!idle || !idleName || have === 0 || have >= want) return {};
  const appDeclarer = declarerOfApp(view);
  if (appDeclarer)
    return {
      warning:
        `${idleName} runs ${have} replicas, fewer than the ${want} HorizontalPodAutoscaler ${name} runs ${liveName} at, and app ${view.app} is ${declaredPhrase(appDeclarer)}: ` +
        `kube-bluegreen does not scale it; raise its replicas there, or a switch to ${view.idle} is refused until it has ${want} available`,
    };
  if (labelsOf(idle)[LIVE_LABEL] !== 'false') return {};
  return {
    action: {
      kind: 'keep-idle-capacity',
      deployment: idleName,
      hpa: name,
      from: have,
      to: want,
      ops: [
        { op: 'test', path: '/metadata/resourceVersion', value: idle.metadata.resourceVersion },
        { op: 'test', path: `/metadata/labels/${escapePointer(LIVE_LABEL)}`, value: 'false' },
        { op: 'replace', path: '/spec/replicas', value: want },
        ...(idle.metadata.annotations ? [] : [{ op: 'add' as const, path: '/metadata/annotations', value: {} }]),
        { op: 'add', path: annotationPath(RAISED_GENERATION_ANNOTATION), value: String((idle.metadata.generation ?? 1) + 1) },
      ],
    },
  };
}

function describeTarget(h: HorizontalPodAutoscaler): string {
  const ref = h.spec?.scaleTargetRef;
  return `${ref?.kind ?? '?'}/${ref?.name ?? '?'}`;
}

export function hpaStatuses(view: AppView): HpaStatus[] {
  return view.hpas.map((h) => {
    const colour = colourOfHpa(view, h) ?? null;
    return {
      name: hpaName(h),
      target: hpaTargetOf(h) ?? describeTarget(h),
      colour,
      follows: colour === null ? null : colour === view.live ? 'live' : 'idle',
      minReplicas: h.spec?.minReplicas ?? 1,
      maxReplicas: h.spec?.maxReplicas ?? null,
      currentReplicas: h.status?.currentReplicas ?? null,
      desiredReplicas: h.status?.desiredReplicas ?? null,
    };
  });
}
