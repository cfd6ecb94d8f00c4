// GitOps mode (README "GitOps"): who declares an app, and what follows from it: a live-colour
// template change from Git or to an app Git declares is refused (dry runs too) naming the idle
// manifest; idle changes apply; switches in Git are gated as any; the product writes nothing Git
// declares (no scale-down; `kubectl bg switch` names the commit instead).
import { describe, expect, it } from 'vitest';
import { decide } from '../../../src/core/admission/decide.ts';
import type { AppView } from '../../../src/core/app.ts';
import {
  ARGOCD_TRACKING_ANNOTATION,
  FLUX_HELM_LABEL,
  FLUX_KUSTOMIZE_LABEL,
  FLUX_KUSTOMIZE_NAMESPACE_LABEL,
  gitDeclarerOfApp,
  gitDeclarerOfRequest,
  GITOPS_ANNOTATION,
  HELM_RELEASE_ANNOTATION,
  HELM_RELEASE_NAMESPACE_ANNOTATION,
} from '../../../src/core/gitops.ts';
import type { Deployment, Service } from '../../../src/core/k8s-types.ts';
import { HISTORY_ANNOTATION, LIVE_LABEL, SCALE_DOWN_AT_ANNOTATION } from '../../../src/core/labels.ts';
import { whyOldColourStays } from '../../../src/core/scale-down.ts';
import { appStatus } from '../../../src/core/status.ts';
import { planSwitch } from '../../../src/core/switch-plan.ts';
import { templateHash } from '../../../src/core/template.ts';
import { annotated, CTX, deploymentUpdate, edit, IMAGE_V2, NOW, selecting, serviceUpdate, shop, viewOf, withImage, withReplicas, denied } from './builders.ts';

const TRACKING = (kind: string, name: string, group = 'apps') => ({ [ARGOCD_TRACKING_ANNOTATION]: `shop:${group}/${kind}:prod/${name}` });
const FLUX = { [FLUX_KUSTOMIZE_LABEL]: 'shop', [FLUX_KUSTOMIZE_NAMESPACE_LABEL]: 'flux-system' };

function labelled<T extends Deployment | Service>(o: T, labels: Record<string, string>): T {
  return edit(o, (c) => {
    c.metadata.labels = { ...c.metadata.labels, ...labels };
  });
}

const IDLE_MANIFEST =
  'In Git, make this change in the manifest of Deployment shop-green (the idle colour, green); once it is rolled out, switch: set spec.selector.slot: green in the manifest of Service shop';

describe('who declares an app', () => {
  const { blue, green, svc } = shop();
  it.each<[string, AppView, string | undefined]>([
    ['nobody: a plain app', viewOf([blue, green], [svc]), undefined],
    [
      'the GitOps annotation on the active Service',
      viewOf([blue, green], [annotated(svc, { [GITOPS_ANNOTATION]: 'true' })]),
      `${GITOPS_ANNOTATION}=true on Service shop`,
    ],
    [
      'Argo CD tracking the active Service',
      viewOf([blue, green], [annotated(svc, TRACKING('Service', 'shop', ''))]),
      `Argo CD (application shop, annotation ${ARGOCD_TRACKING_ANNOTATION})`,
    ],
    [
      'Argo CD tracking a Deployment',
      viewOf([annotated(blue, TRACKING('Deployment', 'shop-blue')), green], [svc]),
      `Argo CD (application shop, annotation ${ARGOCD_TRACKING_ANNOTATION})`,
    ],
    [
      'Flux (kustomize-controller labels)',
      viewOf([labelled(blue, FLUX), labelled(green, FLUX)], [labelled(svc, FLUX)]),
      'Flux (Kustomization flux-system/shop)',
    ],
    ['Flux (helm-controller labels)', viewOf([blue, green], [labelled(svc, { [FLUX_HELM_LABEL]: 'shop' })]), 'Flux (HelmRelease ?/shop)'],
    [
      'markers turned off by gitops=false',
      viewOf([blue, green], [annotated(annotated(svc, TRACKING('Service', 'shop', '')), { [GITOPS_ANNOTATION]: 'false' })]),
      undefined,
    ],
    ['a Helm release alone is not Git', viewOf([annotated(blue, { [HELM_RELEASE_ANNOTATION]: 'shop' }), green], [svc]), undefined],
  ])('%s', (_name, view, how) => {
    expect(gitDeclarerOfApp(view)?.how).toBe(how);
  });

  it.each<[string, string | undefined, string | undefined]>([
    ['kubectl (its own field manager)', 'kubectl-client-side-apply', undefined],
    ['Argo CD', 'argocd-controller', 'Argo CD (field manager argocd-controller)'],
    ['Flux kustomize-controller', 'kustomize-controller', 'Flux (kustomize-controller) (field manager kustomize-controller)'],
    ['Flux helm-controller', 'helm-controller', 'Flux (helm-controller) (field manager helm-controller)'],
    ['no options at all', undefined, undefined],
  ])('a request from %s', (_name, fieldManager, how) => {
    expect(gitDeclarerOfRequest(fieldManager ? { fieldManager } : undefined, blue)?.how).toBe(how);
  });
});

describe('a live-colour template change from Git, or to an app Git declares: refused, dry runs included', () => {
  const plain = shop();
  const tracked = viewOf(
    [annotated(plain.blue, TRACKING('Deployment', 'shop-blue')), annotated(plain.green, TRACKING('Deployment', 'shop-green'))],
    [annotated(plain.svc, TRACKING('Service', 'shop', ''))],
  );
  const annotatedApp = viewOf([plain.blue, plain.green], [annotated(plain.svc, { [GITOPS_ANNOTATION]: 'true' })]);
  const trackedBlue = tracked.deployments.blue!;

  it.each<[string, AppView, Deployment, { fieldManager?: string; dryRun?: boolean }, string]>([
    [
      'Argo CD sync (client-side apply, tracking annotation) of an untracked-looking app',
      plain.view,
      plain.blue,
      { fieldManager: 'argocd-controller' },
      'Argo CD (field manager argocd-controller)',
    ],
    [
      'Flux apply (server-side, kustomize-controller)',
      plain.view,
      plain.blue,
      { fieldManager: 'kustomize-controller' },
      'Flux (kustomize-controller) (field manager kustomize-controller)',
    ],
    [
      "Flux's drift check (the same apply as a dry run)",
      plain.view,
      plain.blue,
      { fieldManager: 'kustomize-controller', dryRun: true },
      'Flux (kustomize-controller) (field manager kustomize-controller)',
    ],
    [
      'a person editing a Deployment Argo CD tracks',
      tracked,
      trackedBlue,
      { fieldManager: 'kubectl-set' },
      `Argo CD (application shop, annotation ${ARGOCD_TRACKING_ANNOTATION})`,
    ],
    ['a person editing an app in GitOps mode', annotatedApp, plain.blue, { fieldManager: 'kubectl-set' }, `${GITOPS_ANNOTATION}=true on Service shop`],
  ])('%s', (_name, view, blue, o, how) => {
    for (const endpoint of ['mutate', 'validate'] as const) {
      const d = denied(decide(endpoint, deploymentUpdate(blue, withImage(blue, IMAGE_V2), o), view, NOW, CTX));
      expect(d.code).toBe(403);
      expect(d.message).toBe(
        `Deployment shop-blue is the live colour (blue) of app shop, which is deployed from Git by ${how}: its pod template cannot change in place (this image change), ` +
          `and kube-bluegreen does not redirect a change that the next sync would undo. Nothing was changed. ${IDLE_MANIFEST}`,
      );
    }
  });

  it('an app with no idle colour yet: the message says to add it to Git', () => {
    const view = viewOf([plain.blue], [plain.svc]);
    const d = denied(decide('mutate', deploymentUpdate(plain.blue, withImage(plain.blue, IMAGE_V2), { fieldManager: 'argocd-controller' }), view, NOW, CTX));
    expect(d.message).toContain("App shop has no green Deployment: add one to Git (a copy of shop-blue's manifest with slot: green)");
  });

  it.each<[string, (d: Deployment) => Deployment]>([
    ['replicas only', (d) => withReplicas(d, 5)],
    ['the same template re-applied (each sync round)', (d) => annotated(d, { 'example.com/synced-at': 'round 2' })],
  ])('the live colour from Git without a template change (%s): allowed as is', (_name, change) => {
    const d = decide('mutate', deploymentUpdate(trackedBlue, change(trackedBlue), { fieldManager: 'argocd-controller' }), tracked, NOW, CTX);
    expect(d).toEqual({ allowed: true, outcome: 'allowed', warnings: [] });
  });

  it('the idle colour from Git: allowed as is (one rollout, applied where Git says)', () => {
    const green = tracked.deployments.green!;
    const d = decide('mutate', deploymentUpdate(green, withImage(green, IMAGE_V2), { fieldManager: 'argocd-controller' }), tracked, NOW, CTX);
    expect(d).toEqual({ allowed: true, outcome: 'allowed', warnings: [] });
  });

  it('Git declaring the live label against the Service: allowed, with a warning to leave it out of Git', () => {
    const green = tracked.deployments.green!;
    const req = deploymentUpdate(green, labelled(withImage(green, IMAGE_V2), { [LIVE_LABEL]: 'true' }), { fieldManager: 'kustomize-controller' });
    const d = decide('mutate', req, tracked, NOW, CTX);
    expect(d).toEqual({
      allowed: true,
      outcome: 'allowed',
      warnings: [
        `Git declares label ${LIVE_LABEL}=true on Deployment shop-green, but Service shop selects slot=blue: kube-bluegreen keeps the label equal to the Service; leave it out of Git`,
      ],
    });
  });

  it('without the annotation or markers, a person is still redirected', () => {
    const d = decide('mutate', deploymentUpdate(plain.blue, withImage(plain.blue, IMAGE_V2), { fieldManager: 'kubectl-set' }), plain.view, NOW, CTX);
    expect(d.outcome).toBe('redirected');
  });
});

describe('a Helm release that declares both colours', () => {
  const plain = shop();
  const release = { [HELM_RELEASE_ANNOTATION]: 'shop', [HELM_RELEASE_NAMESPACE_ANNOTATION]: 'prod' };
  const blue = annotated(plain.blue, release);
  const green = annotated(plain.green, release);
  const view = viewOf([blue, green], [annotated(plain.svc, release)]);

  it("helm upgrade changing the live colour: refused, naming the idle colour's values", () => {
    const d = denied(decide('mutate', deploymentUpdate(blue, withImage(blue, IMAGE_V2), { fieldManager: 'helm' }), view, NOW, CTX));
    expect(d.message).toBe(
      'Deployment shop-blue is the live colour (blue) of app shop, and Helm release prod/shop declares both colours: this image change cannot change it in place, ' +
        "and a redirect to shop-green would be set back by the next 'helm upgrade'. Nothing was changed. Make the change in the values of the idle colour (green, Deployment shop-green) " +
        "and run 'helm upgrade'; once it is rolled out, switch with the value that makes Service shop select slot=green",
    );
  });

  it('helm upgrade changing the idle colour: allowed as is', () => {
    expect(decide('mutate', deploymentUpdate(green, withImage(green, IMAGE_V2), { fieldManager: 'helm' }), view, NOW, CTX)).toEqual({
      allowed: true,
      outcome: 'allowed',
      warnings: [],
    });
  });

  it('a person changing the live colour: refused the same way (the next helm upgrade would set a redirect back)', () => {
    const d = denied(decide('mutate', deploymentUpdate(blue, withImage(blue, IMAGE_V2), { fieldManager: 'kubectl-set' }), view, NOW, CTX));
    expect(d.message).toMatch(/^Deployment shop-blue is the live colour \(blue\) of app shop, and Helm release prod\/shop declares both colours: /);
  });

  it('kubectl bg switch: refused, naming the helm upgrade; the Service switched by helm itself carries no warning', () => {
    expect(planSwitch(view, { kind: 'switch', now: NOW })).toMatchObject({
      ok: false,
      code: 'gitops',
      reason:
        "app shop is declared by Helm release prod/shop (both colours): a switch made here would be set back by the next 'helm upgrade', so kube-bluegreen does not make it",
      hint: "switch with 'helm upgrade' of release prod/shop and the value that makes Service shop select slot=green; the webhook admits it once green is ready ('kubectl bg status shop -n prod --watch')",
    });
    const svc = view.active!;
    expect(decide('validate', serviceUpdate(svc, selecting(svc, 'green'), { fieldManager: 'helm' }), view, NOW, CTX)).toEqual({
      allowed: true,
      outcome: 'allowed',
      warnings: [],
    });
    expect(decide('validate', serviceUpdate(svc, selecting(svc, 'green'), { fieldManager: 'kubectl-patch' }), view, NOW, CTX)).toMatchObject({
      allowed: true,
      warnings: [
        "app shop is declared by Helm release prod/shop (both colours): the next 'helm upgrade' sets Service shop's selector back; switch with 'helm upgrade' of release prod/shop and the value that makes Service shop select slot=green instead",
      ],
    });
  });

  it('helm upgrade of a chart that declares only the live colour (the idle one made by kubectl bg init): redirected', () => {
    const v = viewOf([blue, plain.green], [plain.svc]);
    expect(decide('mutate', deploymentUpdate(blue, withImage(blue, IMAGE_V2), { fieldManager: 'helm' }), v, NOW, CTX).outcome).toBe('redirected');
  });
});

describe('a switch in Git: the readiness gate on the selector stays', () => {
  const { blue, green, svc } = shop({ idleImage: IMAGE_V2 });
  const gitSvc = annotated(svc, TRACKING('Service', 'shop', ''));
  const notReady = edit(green, (c) => {
    c.status = { ...c.status, availableReplicas: 0, readyReplicas: 0, updatedReplicas: 0 };
  });

  it('refused while the colour is not ready (Argo CD retries the next round)', () => {
    const view = viewOf([blue, notReady], [gitSvc]);
    const d = denied(decide('validate', serviceUpdate(gitSvc, selecting(gitSvc, 'green'), { fieldManager: 'argocd-controller' }), view, NOW, CTX));
    expect(d.message).toMatch(/^Service shop cannot send app shop's traffic to green yet: /);
  });

  it('admitted once it is ready, without a warning', () => {
    const view = viewOf([blue, green], [gitSvc]);
    expect(decide('validate', serviceUpdate(gitSvc, selecting(gitSvc, 'green'), { fieldManager: 'argocd-controller' }), view, NOW, CTX)).toEqual({
      allowed: true,
      outcome: 'allowed',
      warnings: [],
    });
  });

  it('a person patching the selector of an app Git declares: admitted, warned that the next sync sets it back', () => {
    const view = viewOf([blue, green], [gitSvc]);
    const d = decide('validate', serviceUpdate(gitSvc, selecting(gitSvc, 'green'), { fieldManager: 'kubectl-patch' }), view, NOW, CTX);
    expect(d).toEqual({
      allowed: true,
      outcome: 'allowed',
      warnings: [
        `app shop is deployed from Git by Argo CD (application shop, annotation ${ARGOCD_TRACKING_ANNOTATION}): the next sync sets Service shop's selector back; switch in Git: set spec.selector.slot: green in the manifest of Service shop instead`,
      ],
    });
  });
});

describe('in GitOps mode the product writes nothing Git declares', () => {
  const { blue, green, svc } = shop({ idleImage: IMAGE_V2 });
  const gitSvc = annotated(svc, { [GITOPS_ANNOTATION]: 'true' });
  const view = viewOf([blue, green], [gitSvc]);

  it.each(['switch', 'rollback'] as const)('kubectl bg %s: refused (exit 2) with the Git change to make', (kind) => {
    const p = planSwitch(view, { kind, now: NOW, to: 'green' });
    expect(p).toEqual({
      ok: false,
      code: 'gitops',
      reason: `app shop is deployed from Git by ${GITOPS_ANNOTATION}=true on Service shop: a ${kind} made here would be set back by the next sync, so kube-bluegreen does not make it`,
      hint: `${kind} in Git: set spec.selector.slot: green in the manifest of Service shop; the webhook admits it once green is ready ('kubectl bg status shop -n prod --watch')`,
    });
  });

  it('no scale-down of the old colour: it is released by a commit', () => {
    const switched = viewOf(
      [edit(blue, (c) => void (c.metadata.labels![LIVE_LABEL] = 'false')), edit(green, (c) => void (c.metadata.labels![LIVE_LABEL] = 'true'))],
      [
        annotated(selecting(gitSvc, 'green'), {
          [SCALE_DOWN_AT_ANNOTATION]: '2000-01-01T00:00:00Z',
          [HISTORY_ANNOTATION]: JSON.stringify([
            {
              kind: 'switch',
              from: 'blue',
              to: 'green',
              at: '2000-01-01T00:00:00Z',
              images: [],
              fromTemplate: templateHash(blue.spec!.template, 'slot'),
              toTemplate: 'x',
            },
          ]),
        }),
      ],
    );
    expect(whyOldColourStays(switched)).toBe(
      `app shop is deployed from Git by ${GITOPS_ANNOTATION}=true on Service shop; release the old colour with a commit (replicas: 0 in its manifest)`,
    );
  });

  it('status says who deploys the app and that the switch is a commit', () => {
    const s = appStatus(view);
    expect(s.declaredBy).toBe(`deployed from Git by ${GITOPS_ANNOTATION}=true on Service shop`);
    expect(s.phase).toBe('ready-to-switch');
    expect(s.message).toBe('green is rolled out and available; switch in Git: set spec.selector.slot: green in the manifest of Service shop');
    expect(appStatus(shop({ idleImage: IMAGE_V2 }).view).declaredBy).toBeNull();
  });
});
