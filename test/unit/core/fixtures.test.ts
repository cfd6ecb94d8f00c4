// The pure core against real AdmissionReviews captured from the local kube-apiserver.
// Every capture has an explicit expectation below; a new capture without one fails.
import fjp from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { decide, type Decision } from '../../../src/core/admission/decide.ts';
import type { Deployment, Service } from '../../../src/core/k8s-types.ts';
import { REDIRECT_IN_FLIGHT_ANNOTATION } from '../../../src/core/labels.ts';
import { readInFlight } from '../../../src/core/redirect.ts';
import { templateHash } from '../../../src/core/template.ts';
import { type Fixture, fixtureFiles, loadFixture, viewOfFixture } from './fixture-loader.ts';

type Expectation =
  | { outcome: 'allowed' | 'not-enrolled' }
  | { outcome: 'denied'; code: number; message: RegExp }
  | {
      outcome: 'redirected';
      idle: string;
      slotKey: string;
      /** The new template as it must reach the idle colour. */
      image: string;
      env: { name: string; value: string }[];
      minReplicas: number;
      warnings: string[];
    };

const SHOP_SWITCH = "run 'kubectl bg switch shop -n fixtures' when it is ready";
const REPLACES = 'shop-green was running another version; this change replaces it';
const GREETING_HELLO = [{ name: 'GREETING', value: 'hello' }];
const ALLOWED = { outcome: 'allowed' } as const;

const EXPECTED: Record<string, Expectation> = {
  'delete-live.1.validate.json': {
    outcome: 'denied',
    code: 403,
    message: /^Deployment shop-blue is the live colour \(blue\) of app shop: Service shop sends traffic to it\. Switch first with 'kubectl bg switch shop -n fixtures'/,
  },
  'env-key-set-image-live.1.mutate.json': {
    outcome: 'redirected',
    idle: 'web-green',
    slotKey: 'environment',
    image: 'registry.example/web:v2',
    env: GREETING_HELLO,
    minReplicas: 2,
    warnings: ["image change redirected to web-green (idle); run 'kubectl bg switch web -n fixtures' when it is ready"],
  },
  // The webhook's own follow-ups: the in-flight record on the Service, the idle Deployment's
  // update (mutate and validate), clearing the record, and the reverted live object at validate.
  'env-key-set-image-live.2.validate.json': ALLOWED,
  'env-key-set-image-live.3.mutate.json': ALLOWED,
  'env-key-set-image-live.4.validate.json': ALLOWED,
  'env-key-set-image-live.5.validate.json': ALLOWED,
  'env-key-set-image-live.6.validate.json': ALLOWED,
  'patch-replicas-live-0.1.mutate.json': {
    outcome: 'denied',
    code: 403,
    message: /^Deployment shop-blue is the live colour \(blue\) of app shop; scaling it to 0 would take the app down\. Switch to green first/,
  },
  'patch-replicas-live.1.mutate.json': ALLOWED,
  'patch-replicas-live.2.validate.json': ALLOWED,
  'patch-template-slot.1.mutate.json': {
    outcome: 'denied',
    code: 422,
    message: /^the slot label of Deployment shop-green's pod template cannot change \(green -> blue\)/,
  },
  'rollout-restart-live.1.mutate.json': ALLOWED,
  'rollout-restart-live.2.validate.json': ALLOWED,
  'scale-live-0.1.validate.json': {
    outcome: 'denied',
    code: 403,
    message: /^Deployment shop-blue is the live colour \(blue\) of app shop; scaling it to 0 would take the app down/,
  },
  'scale-live-5.1.validate.json': ALLOWED,
  'service-drop-slot.1.validate.json': {
    outcome: 'denied',
    code: 422,
    message: /^Service shop must keep slot in its selector: without it the Service sends traffic to both colours of app shop/,
  },
  'service-green-not-ready.1.validate.json': {
    outcome: 'denied',
    code: 403,
    message: /^Service shop cannot send app shop's traffic to green yet: shop-green is still rolling out \(3 of 5 pods updated, 7 running\)\./,
  },
  'service-green-ready.1.validate.json': ALLOWED,
  'service-green-scaled-down.1.validate.json': {
    outcome: 'denied',
    code: 403,
    message: /^Service shop cannot send app shop's traffic to green yet: shop-green is scaled to 2 replicas, fewer than the 5 the live colour runs\./,
  },
  'service-purple.1.validate.json': {
    outcome: 'denied',
    code: 422,
    message: /^Service shop selects slot=purple, a colour that does not exist; app shop has blue and green$/,
  },
  'set-env-live.1.mutate.json': {
    outcome: 'redirected',
    idle: 'shop-green',
    slotKey: 'slot',
    image: 'registry.example/shop:v1',
    env: [{ name: 'GREETING', value: 'hi' }],
    minReplicas: 2,
    warnings: [`pod template change redirected to shop-green (idle); ${SHOP_SWITCH}`, REPLACES],
  },
  'set-env-live.2.validate.json': ALLOWED,
  'set-env-live.3.mutate.json': ALLOWED,
  'set-env-live.4.validate.json': ALLOWED,
  'set-env-live.5.validate.json': ALLOWED,
  'set-env-live.6.validate.json': ALLOWED,
  'set-image-idle.1.mutate.json': ALLOWED,
  'set-image-idle.2.validate.json': ALLOWED,
  'set-image-live-dry-run.1.mutate.json': {
    outcome: 'redirected',
    idle: 'shop-green',
    slotKey: 'slot',
    image: 'registry.example/shop:v3',
    env: GREETING_HELLO,
    minReplicas: 2,
    warnings: [`image change redirected to shop-green (idle); ${SHOP_SWITCH}`, REPLACES],
  },
  'set-image-live-dry-run.2.validate.json': ALLOWED,
  'set-image-live.1.mutate.json': {
    outcome: 'redirected',
    idle: 'shop-green',
    slotKey: 'slot',
    image: 'registry.example/shop:v2',
    env: GREETING_HELLO,
    minReplicas: 2,
    warnings: [`image change redirected to shop-green (idle); ${SHOP_SWITCH}`],
  },
  'set-image-live.2.validate.json': ALLOWED,
  'set-image-live.3.mutate.json': ALLOWED,
  'set-image-live.4.validate.json': ALLOWED,
  'set-image-live.5.validate.json': ALLOWED,
  'set-image-live.6.validate.json': ALLOWED,
};

/** Captures were made on 2026-11-23 around 13:04 UTC. */
const CAPTURE_TIME = new Date('2026-11-23T13:05:00.000Z');

/** One second after the in-flight record the review's object carries, if any: the record is fresh. */
function nowFor(f: Fixture): Date {
  const rec = readInFlight(f.review.request.object as Service | undefined);
  return rec ? new Date(Date.parse(rec.at) + 1000) : CAPTURE_TIME;
}

function decideFixture(f: Fixture, now = nowFor(f)): Decision {
  return decide(f.endpoint, f.review.request, viewOfFixture(f), now);
}

const files = fixtureFiles();

describe('captured AdmissionReviews', () => {
  it('has an expectation for exactly the files in test/fixtures/admission', () => {
    expect(Object.keys(EXPECTED).sort()).toEqual(files);
  });

  it('holds at least one capture of each kind of decision', () => {
    const outcomes = new Set(Object.values(EXPECTED).map((e) => e.outcome));
    expect([...outcomes].sort()).toEqual(['allowed', 'denied', 'redirected']);
  });

  describe.each(files.map((file) => ({ file })))('$file', ({ file }) => {
    const f = loadFixture(file);
    const want = EXPECTED[file];

    it('is a well-formed capture', () => {
      expect(f.review.apiVersion).toBe('admission.k8s.io/v1');
      expect(f.review.kind).toBe('AdmissionReview');
      expect(f.review.request.uid).toMatch(/^[0-9a-f-]{36}$/);
      expect(f.cluster.deployments.length).toBeGreaterThan(0);
      expect(want, `no expectation for ${file}`).toBeDefined();
    });

    it(`decides ${want?.outcome ?? '?'}`, () => {
      if (!want) throw new Error(`no expectation for ${file}`);
      const d = decideFixture(f);
      expect(d.outcome).toBe(want.outcome);
      if (want.outcome === 'allowed' || want.outcome === 'not-enrolled') {
        expect(d).toEqual({ allowed: true, outcome: want.outcome, warnings: [] });
      }
      if (want.outcome === 'denied') {
        if (d.outcome !== 'denied') throw new Error('unreachable');
        expect(d.code).toBe(want.code);
        expect(d.reason).toBe(want.code === 403 ? 'Forbidden' : want.code === 422 ? 'Invalid' : 'Conflict');
        expect(d.message).toMatch(want.message);
        // The real API server printed exactly this message to the user.
        expect(f.kubectl.stderr.endsWith(`denied the request: ${d.message}`)).toBe(true);
        expect(f.kubectl.stderr.startsWith(want.code === 422 ? 'The request is invalid: ' : 'Error from server (Forbidden): ')).toBe(true);
      }
    });

    if (want?.outcome === 'redirected') {
      describe('the redirect', () => {
        const d = decideFixture(f);
        if (d.outcome !== 'redirected') {
          it('is a redirect', () => expect(d.outcome).toBe('redirected'));
          return;
        }
        const req = f.review.request;
        const newD = req.object as Deployment;
        const oldD = req.oldObject as Deployment;

        it('patches the live object back to its old template, and nothing else', () => {
          const patched = fjp.applyPatch(structuredClone(newD), d.patch!, true, false).newDocument;
          expect(patched.spec!.template).toEqual(oldD.spec!.template);
          expect(patched).toEqual({ ...newD, spec: { ...newD.spec, template: oldD.spec!.template } });
          expect(d.patch!.every((op) => op.path.startsWith('/spec/template/'))).toBe(true);
        });

        it('sends the new template, with the idle slot label, to the idle Deployment', () => {
          expect(d.effect!.idle).toEqual({ name: want.idle, colour: 'green' });
          expect(d.effect!.live).toEqual({ name: oldD.metadata.name, colour: 'blue' });
          expect(d.effect!.slotKey).toBe(want.slotKey);
          expect(d.effect!.minReplicas).toBe(want.minReplicas);
          expect(d.effect!.requestUid).toBe(req.uid);
          expect(d.effect!.user).toEqual(req.userInfo);
          expect(d.effect!.namespace).toBe('fixtures');
          const t = d.effect!.template;
          expect(t.metadata!.labels![want.slotKey]).toBe('green');
          expect(t.spec!.containers!.map((c) => c.image)).toEqual([want.image]);
          expect(t.spec!.containers![0]!.env).toEqual(want.env);
          // Apart from the slot label, exactly what the user asked for.
          expect({ ...t, metadata: { ...t.metadata, labels: { ...t.metadata!.labels, [want.slotKey]: 'blue' } } }).toEqual(
            newD.spec!.template,
          );
          expect(d.effect!.templateHash).toBe(templateHash(newD.spec!.template, want.slotKey));
        });

        it('warns exactly as kubectl printed it', () => {
          expect(d.warnings).toEqual(want.warnings);
          expect(f.kubectl.stderr).toBe(want.warnings.map((w) => `Warning: ${w}`).join('\n'));
        });
      });
    }
  });

  describe('agrees with the real API server, scenario by scenario', () => {
    const scenarios = [...new Set(files.map((f) => loadFixture(f).scenario))].sort();
    it.each(scenarios.map((scenario) => ({ scenario })))('$scenario', ({ scenario }) => {
      const fs = files.map(loadFixture).filter((f) => f.scenario === scenario);
      expect(new Set(fs.map((f) => f.kubectl.exitCode)).size).toBe(1);
      const exitCode = fs[0]!.kubectl.exitCode;
      const denied = fs.filter((f) => decideFixture(f).outcome === 'denied');
      // kubectl failed <=> the pure core denies one of the scenario's requests.
      expect(denied.length > 0).toBe(exitCode === 1);
      if (exitCode === 0) {
        const warnings = fs.flatMap((f) => {
          const d = decideFixture(f);
          return 'warnings' in d ? d.warnings : [];
        });
        expect(warnings.map((w) => `Warning: ${w}`).join('\n')).toBe(fs[0]!.kubectl.stderr);
      }
    });
  });
});

describe('captured Service patches with an in-flight redirect record', () => {
  const ready = loadFixture('service-green-ready.1.validate.json');
  const at = '2026-11-23T13:05:10.000Z';
  const withRecord = (template: string) => {
    const f = structuredClone(ready);
    const svc = f.review.request.object as Service;
    svc.metadata.annotations = {
      ...svc.metadata.annotations,
      [REDIRECT_IN_FLIGHT_ANNOTATION]: JSON.stringify({ to: 'green', template, at }),
    };
    return f;
  };
  const greenHash = () => {
    const green = ready.cluster.deployments.find((d) => d.metadata.name === 'shop-green')!;
    return templateHash(green.spec!.template, 'slot');
  };

  it.each([
    { name: 'fresh record (2 s), green not on that template yet', template: 'ffffffffffff', after: 2, outcome: 'denied' },
    { name: 'fresh record (29 s)', template: 'ffffffffffff', after: 29, outcome: 'denied' },
    { name: 'stale record (31 s)', template: 'ffffffffffff', after: 31, outcome: 'allowed' },
    { name: 'fresh record whose template green already runs', template: 'GREEN', after: 2, outcome: 'allowed' },
  ])('$name -> $outcome', ({ template, after, outcome }) => {
    const f = withRecord(template === 'GREEN' ? greenHash() : template);
    const d = decideFixture(f, new Date(Date.parse(at) + after * 1000));
    expect(d.outcome).toBe(outcome);
    if (d.outcome === 'denied')
      expect(d.message).toMatch(
        new RegExp(`^Service shop cannot send app shop's traffic to green yet: a change is being redirected to shop-green right now \\(${after}s ago\\)\\. `),
      );
  });

  it('the webhook writing its own record (selector unchanged) is allowed while the record is fresh', () => {
    const f = loadFixture('set-image-live.2.validate.json');
    const rec = readInFlight(f.review.request.object as Service);
    expect(rec).toEqual({ to: 'green', template: expect.stringMatching(/^[0-9a-f]{12}$/), at: expect.any(String) });
    expect(decideFixture(f, new Date(Date.parse(rec!.at) + 1000))).toEqual({ allowed: true, outcome: 'allowed', warnings: [] });
  });

  it("the record names the template the redirect sent (the mutate capture's templateHash)", () => {
    const mutate = decideFixture(loadFixture('set-image-live.1.mutate.json'));
    const rec = readInFlight(loadFixture('set-image-live.2.validate.json').review.request.object as Service);
    expect(mutate.outcome).toBe('redirected');
    if (mutate.outcome === 'redirected') expect(rec!.template).toBe(mutate.effect!.templateHash);
  });
});
