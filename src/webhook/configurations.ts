// The webhook configurations, defined once. The webhook's flag `--register-url` (a webhook
// outside the cluster, as `npm start` and the e2e tests run it) creates exactly these; the Helm chart renders the same
// rules, selectors and policies, and test/unit/chart.test.ts holds them equal.
import { APP_LABEL, BREAK_GLASS_GROUP } from '../core/labels.ts';

export { BREAK_GLASS_GROUP };

export const CONFIG_NAME = 'kube-bluegreen';

export type ClientConfig = { url: string; caBundle: string } | { service: { namespace: string; name: string; path: string; port: number }; caBundle: string };

export interface WebhookOptions {
  /** Base URL (local) or Service reference (in-cluster), without the path. */
  client: { url: string } | { service: { namespace: string; name: string; port: number } };
  caBundle: string;
  /** Namespaces never sent to the webhook (its own, kube-system). */
  excludeNamespaces: string[];
  /** Only namespaces carrying these labels (opt-in per namespace); none: every namespace not excluded. */
  namespaceMatchLabels?: Record<string, string>;
  name?: string;
  /**
   * Requests from this group skip every webhook (matchConditions): the break-glass way to act on
   * enrolled apps while no webhook replica answers (`kubectl bg rollback --break-glass`). The
   * cluster policy still applies to it. Default BREAK_GLASS_GROUP; '' leaves the condition out.
   */
  breakGlassGroup?: string;
}

/** A CEL string literal of a group name (single-quoted; a quote or backslash is refused, not escaped). */
export function checkBreakGlassGroup(group: string): string {
  if (/['\\\n\r]/.test(group)) throw new Error(`break-glass group ${JSON.stringify(group)}: a quote, backslash or line break is not allowed`);
  return group;
}

/**
 * Skips the webhook for a request from the break-glass group. The API server evaluates it before
 * calling the webhook, so it holds while the webhook is down (that is its point), and a request it
 * skips is decided by the cluster policy alone. matchConditions are ANDed: with the
 * deployments.validate one, the webhook is called for a request that needs a look and is not
 * break-glass. `groups` is absent from userInfo when a user has none.
 */
export function breakGlassCondition(group: string): { name: string; expression: string } {
  return {
    name: 'not-break-glass',
    expression: `!has(request.userInfo.groups) || !('${checkBreakGlassGroup(group)}' in request.userInfo.groups)`,
  };
}

const enrolled = { matchExpressions: [{ key: APP_LABEL, operator: 'Exists' }] };

/**
 * When the validating webhook needs to see a Deployment UPDATE at all: its pod template or
 * selector changed, or it scales to 0. Everything else it would allow as is (a change the
 * mutating webhook redirected and restored, a scale, a label), so the API server need not call
 * it: one webhook call less on every redirect. A pending-change record in such a request is the
 * mutating webhook's own (it undoes any other), and the reconciler acts only on records that
 * open with its seal. CEL, run by the API server (matchConditions, GA since Kubernetes 1.30).
 */
export const DEPLOYMENT_VALIDATE_CONDITION =
  "request.operation != 'UPDATE' || object.spec.template != oldObject.spec.template || object.spec.selector != oldObject.spec.selector || " +
  '(has(object.spec.replicas) && object.spec.replicas == 0)';

function clientConfig(o: WebhookOptions, path: string): ClientConfig {
  return 'url' in o.client
    ? { url: `${o.client.url.replace(/\/$/, '')}${path}`, caBundle: o.caBundle }
    : { service: { ...o.client.service, path }, caBundle: o.caBundle };
}

function namespaceSelector(o: WebhookOptions) {
  const notExcluded = { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: o.excludeNamespaces }] };
  return o.namespaceMatchLabels && Object.keys(o.namespaceMatchLabels).length ? { matchLabels: o.namespaceMatchLabels, ...notExcluded } : notExcluded;
}

/** The break-glass condition, if any, then the webhook's own. */
function conditions(o: WebhookOptions, own: { name: string; expression: string }[] = []) {
  const group = o.breakGlassGroup ?? BREAK_GLASS_GROUP;
  const all = [...own, ...(group ? [breakGlassCondition(group)] : [])];
  return all.length ? { matchConditions: all } : {};
}

export function mutatingConfiguration(o: WebhookOptions) {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: o.name ?? CONFIG_NAME, labels: { 'app.kubernetes.io/name': 'kube-bluegreen' } },
    webhooks: [
      {
        name: 'deployments.mutate.bluegreen.io',
        admissionReviewVersions: ['v1'],
        clientConfig: clientConfig(o, '/mutate'),
        rules: [{ apiGroups: ['apps'], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['deployments'], scope: 'Namespaced' }],
        objectSelector: enrolled,
        namespaceSelector: namespaceSelector(o),
        ...conditions(o),
        // Admission writes nothing: a redirect only patches the request it is asked about.
        sideEffects: 'None',
        // Enrolled apps only: a change to the live colour must never pass unchecked.
        failurePolicy: 'Fail',
        matchPolicy: 'Equivalent',
        // Called again when a later mutating webhook (a policy engine resolving tags to digests, a
        // defaulter) changed the object: the live template it touched is restored once more, and the
        // change recorded the first time stands. See decide.ts, recordChange.
        reinvocationPolicy: 'IfNeeded',
        timeoutSeconds: 10,
      },
    ],
  };
}

export function validatingConfiguration(o: WebhookOptions) {
  const common = {
    admissionReviewVersions: ['v1'],
    clientConfig: clientConfig(o, '/validate'),
    namespaceSelector: namespaceSelector(o),
    sideEffects: 'None',
    matchPolicy: 'Equivalent',
  };
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: o.name ?? CONFIG_NAME, labels: { 'app.kubernetes.io/name': 'kube-bluegreen' } },
    webhooks: [
      {
        name: 'deployments.validate.bluegreen.io',
        ...common,
        rules: [{ apiGroups: ['apps'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE', 'DELETE'], resources: ['deployments'], scope: 'Namespaced' }],
        objectSelector: enrolled,
        ...conditions(o, [{ name: 'needs-a-look', expression: DEPLOYMENT_VALIDATE_CONDITION }]),
        failurePolicy: 'Fail',
        timeoutSeconds: 5,
      },
      {
        name: 'services.validate.bluegreen.io',
        ...common,
        rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['services'], scope: 'Namespaced' }],
        objectSelector: enrolled,
        ...conditions(o),
        failurePolicy: 'Fail',
        timeoutSeconds: 5,
      },
      {
        // The Scale object carries no labels, so an objectSelector would never match it
        // (kubernetes/kubernetes#113594). This entry sees every deployments/scale UPDATE,
        // answers at once from the cache for anything not enrolled, and is Ignore so the
        // webhook being down never blocks scaling.
        name: 'scale.validate.bluegreen.io',
        ...common,
        rules: [{ apiGroups: ['apps'], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['deployments/scale'], scope: 'Namespaced' }],
        ...conditions(o),
        failurePolicy: 'Ignore',
        timeoutSeconds: 2,
      },
    ],
  };
}
