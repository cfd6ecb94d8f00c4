// The pure core against real AdmissionReviews captured from the local kube-apiserver.
// Every capture has an explicit expectation below; a new capture without one fails.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fjp from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { type AdmissionContext, decide, type Decision } from '../../../src/core/admission/decide.ts';
import type { Deployment } from '../../../src/core/k8s-types.ts';
import { LAST_CHANGE_ANNOTATION, PENDING_CHANGE_ANNOTATION } from '../../../src/core/labels.ts';
import { recordSeal } from '../../../src/core/pending-change.ts';
import { templateHash } from '../../../src/core/template.ts';
import { type Fixture, FIXTURE_DIR, fixtureFiles, loadFixture, viewOfFixture } from './fixture-loader.ts';

/** The capture's webhook sealed its records with this key, and ran as the local cluster's admin (as kubectl did). */
const CTX: AdmissionContext = { seal: recordSeal(readFileSync(path.join(FIXTURE_DIR, '../record-key'))), self: 'kubernetes-admin' };

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

function followUps(scenario: string, steps: string[]): Record<string, Expectation> {
  return Object.fromEntries(steps.map((s) => [`${scenario}.${s}.json`, ALLOWED]));
}

const EXPECTED: Record<string, Expectation> = {
  'delete-live.1.validate.json': {
    outcome: 'denied',
    code: 403,
    message:
      /^Deployment shop-blue is the live colour \(blue\) of app shop: Service shop sends traffic to it\. Switch first with 'kubectl bg switch shop -n fixtures'/,
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
  // The follow-ups of a redirect: the dry run of the idle patch (mutate, validate), the user's
  // request at validate (reverted, carrying the record), then the reconciler's update of the idle
  // colour with the change and its outcome (mutate, validate). The live colour is not written.
  ...followUps('env-key-set-image-live', ['2.mutate', '3.validate', '4.validate', '5.mutate', '6.validate']),
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
  // The reconciler moving the live labels after the switch: green true, blue false (mutate, validate each).
  ...followUps('service-green-ready', ['2.mutate', '3.validate', '4.mutate', '5.validate']),
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
  ...followUps('set-env-live', ['2.mutate', '3.validate', '4.validate', '5.mutate', '6.validate']),
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
  // A dry run: the checks' dry run of the idle patch and the user's request at validate; nothing after.
  ...followUps('set-image-live-dry-run', ['2.mutate', '3.validate', '4.validate']),
  'set-image-live.1.mutate.json': {
    outcome: 'redirected',
    idle: 'shop-green',
    slotKey: 'slot',
    image: 'registry.example/shop:v2',
    env: GREETING_HELLO,
    minReplicas: 2,
    warnings: [`image change redirected to shop-green (idle); ${SHOP_SWITCH}`],
  },
  ...followUps('set-image-live', ['2.mutate', '3.validate', '4.validate', '5.mutate', '6.validate']),
};

/** Captures were made on 2026-12-02 around 07:00 UTC. */
const CAPTURE_TIME = new Date('2026-12-02T07:00:00.000Z');

/**
 * The record a scenario's request carried on to validation (the validate capture of the same
 * Deployment whose record it adds), if any: what the API server stores, or for a dry run would.
 */
function storedRecord(f: Fixture): string | undefined {
  const name = f.review.request.name;
  if (f.review.request.kind.kind !== 'Deployment' || f.review.request.operation !== 'UPDATE') return undefined;
  for (const file of fixtureFiles().filter((x) => x.startsWith(`${f.scenario}.`) && x.endsWith('.validate.json'))) {
    const r = loadFixture(file).review.request;
    if (r.name !== name || r.operation !== 'UPDATE') continue;
    const v = (r.object as Deployment).metadata.annotations?.[PENDING_CHANGE_ANNOTATION];
    if (v && v !== (r.oldObject as Deployment).metadata.annotations?.[PENDING_CHANGE_ANNOTATION]) return v;
  }
  return undefined;
}

/** For a redirect, the time its stored record names: decide then writes the very same record. */
function nowFor(f: Fixture): Date {
  const rec = storedRecord(f);
  return rec ? new Date(JSON.parse(rec).at) : CAPTURE_TIME;
}

function decideFixture(f: Fixture, now = nowFor(f)): Decision {
  return decide(f.endpoint, f.review.request, viewOfFixture(f), now, CTX);
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

        it('patches the live object back to its old template and adds the record, nothing else', () => {
          const patched = fjp.applyPatch(structuredClone(newD), d.patch!, true, false).newDocument;
          expect(patched.spec!.template).toEqual(oldD.spec!.template);
          const { [PENDING_CHANGE_ANNOTATION]: record, ...others } = patched.metadata.annotations ?? {};
          expect(record).toBeDefined();
          expect(record).not.toBe(newD.metadata.annotations?.[PENDING_CHANGE_ANNOTATION]);
          // The earlier change's record (settled, it stays until replaced) is what this one replaces.
          const { [PENDING_CHANGE_ANNOTATION]: _earlier, ...sent } = newD.metadata.annotations ?? {};
          expect(others).toEqual(sent);
          expect(d.patch!.every((op) => op.path.startsWith('/spec/template/') || op.path.startsWith('/metadata/annotations'))).toBe(true);
        });

        it('writes exactly the record the API server passed on to validation (and stored, unless a dry run)', () => {
          const patched = fjp.applyPatch(structuredClone(newD), d.patch!, true, false).newDocument;
          expect(patched.metadata.annotations![PENDING_CHANGE_ANNOTATION]).toBe(storedRecord(f));
        });

        it('records the new template as the user sent it, and checks the idle Deployment with it', () => {
          const rec = CTX.seal.open(
            fjp.applyPatch(structuredClone(newD), d.patch!, true, false).newDocument.metadata.annotations![PENDING_CHANGE_ANNOTATION]!,
          )!;
          expect(rec).toMatchObject({
            from: 'blue',
            to: 'green',
            minReplicas: want.minReplicas,
            request: req.uid,
            by: req.userInfo.username,
            deployment: oldD.metadata.uid,
            base: oldD.metadata.resourceVersion,
          });
          expect(rec.template).toEqual(newD.spec!.template);
          expect(rec.hash).toBe(templateHash(newD.spec!.template, want.slotKey));
          expect(d.check!.idle).toEqual({ name: want.idle, colour: 'green' });
          expect(d.check!.live).toEqual({ name: oldD.metadata.name, colour: 'blue' });
          expect(d.check!.user).toEqual(req.userInfo);
          expect(d.check!.namespace).toBe('fixtures');
          const t = (d.check!.idleOps.find((op) => op.path === '/spec/template') as { value: Deployment['spec'] & {} }).value as NonNullable<
            Deployment['spec']
          >['template'] & {};
          expect(t.metadata!.labels![want.slotKey]).toBe('green');
          expect(t.spec!.containers!.map((c) => c.image)).toEqual([want.image]);
          expect(t.spec!.containers![0]!.env).toEqual(want.env);
          // Apart from the slot label, exactly what the user asked for.
          expect({ ...t, metadata: { ...t.metadata, labels: { ...t.metadata!.labels, [want.slotKey]: 'blue' } } }).toEqual(newD.spec!.template);
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

describe('the reconciler in the captures', () => {
  it("applies the record to the idle colour with its outcome, as the webhook's own identity, in one update; nothing else", () => {
    const apply = loadFixture('set-image-live.5.mutate.json').review.request;
    expect(apply.name).toBe('shop-green');
    expect(apply.userInfo.username).toBe('kubernetes-admin');
    const green = apply.object as Deployment;
    expect(green.spec!.template!.spec!.containers![0]!.image).toBe('registry.example/shop:v2');
    const record = CTX.seal.open(storedRecord(loadFixture('set-image-live.1.mutate.json'))!)!;
    expect(JSON.parse(green.metadata.annotations![LAST_CHANGE_ANNOTATION]!)).toMatchObject({ request: record.request, applied: true, from: 'shop-blue' });
    expect(fixtureFiles().filter((f) => f.startsWith('set-image-live.'))).toHaveLength(6);
  });
});
