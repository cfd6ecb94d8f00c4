import { describe, expect, it } from 'vitest';
import { ApiError } from '../../../src/kube/errors.ts';
import { AGAIN, retryOnConflict } from '../../../src/kube/retry.ts';

const conflict = () => new ApiError(409, 'Conflict', 'the object has been modified', {});

describe('retryOnConflict', () => {
  it('returns the first answer; a conflict or AGAIN runs the attempt again', async () => {
    const seen: string[] = [];
    const answers: (() => Promise<string | typeof AGAIN>)[] = [
      async () => {
        seen.push('conflict');
        throw conflict();
      },
      async () => {
        seen.push('again');
        return AGAIN;
      },
      async () => {
        seen.push('done');
        return 'ok';
      },
    ];
    expect(await retryOnConflict(() => answers.shift()!(), { exhausted: () => 'exhausted' })).toBe('ok');
    expect(seen).toEqual(['conflict', 'again', 'done']);
  });

  it('other errors propagate at once', async () => {
    let n = 0;
    const gone = new ApiError(404, 'NotFound', 'gone', {});
    await expect(
      retryOnConflict(
        async () => {
          n++;
          throw gone;
        },
        { exhausted: () => 'exhausted' },
      ),
    ).rejects.toBe(gone);
    expect(n).toBe(1);
  });

  it('after the attempts (5 unless told), the exhausted answer or error', async () => {
    let n = 0;
    const always = async () => {
      n++;
      throw conflict();
    };
    expect(await retryOnConflict(always, { exhausted: () => 'gave up' })).toBe('gave up');
    expect(n).toBe(5);
    n = 0;
    await expect(
      retryOnConflict(always, {
        attempts: 2,
        exhausted: () => {
          throw new Error('kept changing');
        },
      }),
    ).rejects.toThrow('kept changing');
    expect(n).toBe(2);
  });

  it('isConflict chooses which errors mean "read again" (a failed JSON-patch test: 422)', async () => {
    let n = 0;
    const r = await retryOnConflict(
      async () => {
        if (n++ === 0) throw new ApiError(422, 'Invalid', 'test failed', {});
        return 'ok';
      },
      { isConflict: (e) => e instanceof ApiError && (e.status === 409 || e.status === 422), exhausted: () => 'exhausted' },
    );
    expect(r).toBe('ok');
    expect(n).toBe(2);
  });
});
