// Who declares an app: Git (Argo CD, Flux, or the app's own GitOps annotation), a Helm release,
// or nobody (people with kubectl). A change the declaring tool would undo on its next round is
// refused, not redirected: Git declares both colours, so a redirect to the idle colour is set back
// by the next sync and the two never converge. See README "GitOps".
import type { AppView } from './app.ts';
import type { ObjectMeta } from './k8s-types.ts';
import { annotationsOf, isRecord, labelsOf } from './k8s-types.ts';
import type { Colour } from './labels.ts';

/** Annotation on the active Service, kept in Git: "true" puts the app in GitOps mode; "false" turns detection from markers off. */
export const GITOPS_ANNOTATION = 'bluegreen.io/gitops';

/** Argo CD's resource tracking annotation (tracking method `annotation`, the default since Argo CD 3.0): `<app>:<group>/<Kind>:<namespace>/<name>`. */
export const ARGOCD_TRACKING_ANNOTATION = 'argocd.argoproj.io/tracking-id';
/** Labels kustomize-controller sets on every object it applies (its Kustomization's name and namespace). */
export const FLUX_KUSTOMIZE_LABEL = 'kustomize.toolkit.fluxcd.io/name';
export const FLUX_KUSTOMIZE_NAMESPACE_LABEL = 'kustomize.toolkit.fluxcd.io/namespace';
/** Labels helm-controller sets on every object of a HelmRelease. */
export const FLUX_HELM_LABEL = 'helm.toolkit.fluxcd.io/name';
export const FLUX_HELM_NAMESPACE_LABEL = 'helm.toolkit.fluxcd.io/namespace';
/** Annotations Helm (3.2 and later) sets on every object of a release. */
export const HELM_RELEASE_ANNOTATION = 'meta.helm.sh/release-name';
export const HELM_RELEASE_NAMESPACE_ANNOTATION = 'meta.helm.sh/release-namespace';

/** Annotations outside bluegreen.io/ that the webhook's cache keeps, for the decisions below. */
export const DECLARER_ANNOTATIONS: readonly string[] = [ARGOCD_TRACKING_ANNOTATION, HELM_RELEASE_ANNOTATION, HELM_RELEASE_NAMESPACE_ANNOTATION];

/** The field managers of GitOps appliers, as they name themselves in a request's options. */
export const GITOPS_FIELD_MANAGERS: Readonly<Record<string, string>> = {
  'argocd-controller': 'Argo CD',
  'kustomize-controller': 'Flux (kustomize-controller)',
  'helm-controller': 'Flux (helm-controller)',
};
/** The field manager the Helm CLI sends (the base name of its executable). */
export const HELM_FIELD_MANAGER = 'helm';

export interface Declarer {
  /** Which tool: 'git' for an app in GitOps mode by its annotation alone; 'helm' for a release that declares both colours. */
  tool: 'argocd' | 'flux' | 'git' | 'helm';
  /** How it was told, for messages: "Argo CD (field manager argocd-controller)", "Helm release prod/shop". */
  how: string;
}

type Meta = { metadata?: ObjectMeta } | undefined;

/** The Git applier that declares an object, from the markers it carries. */
export function gitDeclarerOf(o: Meta): Declarer | undefined {
  const tracking = annotationsOf(o)[ARGOCD_TRACKING_ANNOTATION];
  if (tracking) return { tool: 'argocd', how: `Argo CD (application ${tracking.split(':')[0]}, annotation ${ARGOCD_TRACKING_ANNOTATION})` };
  const labels = labelsOf(o);
  const ks = labels[FLUX_KUSTOMIZE_LABEL];
  if (ks) return { tool: 'flux', how: `Flux (Kustomization ${labels[FLUX_KUSTOMIZE_NAMESPACE_LABEL] ?? '?'}/${ks})` };
  const hr = labels[FLUX_HELM_LABEL];
  if (hr) return { tool: 'flux', how: `Flux (HelmRelease ${labels[FLUX_HELM_NAMESPACE_LABEL] ?? '?'}/${hr})` };
  return undefined;
}

/** The field manager a request names in its options (create, update and patch options all carry one). */
export function fieldManagerOf(options: unknown): string | undefined {
  return isRecord(options) && typeof options.fieldManager === 'string' && options.fieldManager ? options.fieldManager : undefined;
}

/** The GitOps applier that sent a request, by its field manager alone (a person's kubectl names its own). */
export function gitApplierOf(options: unknown): Declarer | undefined {
  const fm = fieldManagerOf(options);
  const tool = fm ? GITOPS_FIELD_MANAGERS[fm] : undefined;
  return fm && tool ? { tool: fm === 'argocd-controller' ? 'argocd' : 'flux', how: `${tool} (field manager ${fm})` } : undefined;
}

/** A request sent by a GitOps applier: by its field manager, or by the markers on the object it sends. */
export function gitDeclarerOfRequest(options: unknown, object: Meta): Declarer | undefined {
  return gitApplierOf(options) ?? gitDeclarerOf(object);
}

/**
 * Whether the app is managed from Git: its active Service's GitOps annotation, else the markers of
 * an applier on the active Service or a Deployment of the app. `bluegreen.io/gitops: "false"` on the
 * active Service turns the detection from markers off (requests from an applier are still refused).
 */
export function gitDeclarerOfApp(view: AppView): Declarer | undefined {
  const mode = annotationsOf(view.active)[GITOPS_ANNOTATION];
  if (mode === 'false') return undefined;
  if (mode === 'true') {
    const tool = [view.active, ...Object.values(view.deployments)].map(gitDeclarerOf).find(Boolean);
    return { tool: tool?.tool ?? 'git', how: `${GITOPS_ANNOTATION}=true on Service ${view.active?.metadata.name}` };
  }
  for (const o of [view.active, view.deployments.blue, view.deployments.green]) {
    const d = gitDeclarerOf(o);
    if (d) return d;
  }
  return undefined;
}

/**
 * The tool that declares the app, whose next round would undo what kube-bluegreen changed behind it:
 * Git (gitDeclarerOfApp), or a Helm release that declares the active Service and both colours.
 */
export function declarerOfApp(view: AppView): Declarer | undefined {
  const git = gitDeclarerOfApp(view);
  if (git) return git;
  const release = helmReleaseOf(view.active);
  const { blue, green } = view.deployments;
  if (release && helmReleaseOf(blue) === release && helmReleaseOf(green) === release) return { tool: 'helm', how: `Helm release ${release}` };
  return undefined;
}

/** "deployed from Git by Argo CD (...)", "declared by Helm release prod/shop (both colours)". */
export function declaredPhrase(d: Declarer): string {
  return d.tool === 'helm' ? `declared by ${d.how} (both colours)` : `deployed from Git by ${d.how}`;
}

/** Where the declaring tool's next round comes from, for "would be set back by ...". */
export function nextRound(d: Declarer): string {
  return d.tool === 'helm' ? "the next 'helm upgrade'" : 'the next sync';
}

/** The Helm release an object belongs to ("namespace/name"), from Helm's own annotations. */
export function helmReleaseOf(o: Meta): string | undefined {
  const a = annotationsOf(o);
  const name = a[HELM_RELEASE_ANNOTATION];
  return name ? `${a[HELM_RELEASE_NAMESPACE_ANNOTATION] ?? o?.metadata?.namespace ?? ''}/${name}` : undefined;
}

/**
 * The Git change that switches the app to `to`, for messages: the edit of the active Service's
 * selector in the manifest the applier applies.
 */
export function gitSwitchEdit(view: AppView, to: Colour): string {
  const svc = view.active?.metadata.name ?? '<active Service>';
  return `set spec.selector.${view.slotKey}: ${to} in the manifest of Service ${svc}`;
}

/** How to switch the app to `to` with the tool that declares it: "in Git: set ...", "with 'helm upgrade' of ...". */
export function switchWith(d: Declarer, view: AppView, to: Colour): string {
  if (d.tool !== 'helm') return `in Git: ${gitSwitchEdit(view, to)}`;
  return `with 'helm upgrade' of ${d.how.replace(/^Helm /, '')} and the value that makes Service ${view.active?.metadata.name} select ${view.slotKey}=${to}`;
}
