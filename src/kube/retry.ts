// The read-then-write loop against optimistic concurrency: read, decide, write with the
// resourceVersion read; when another writer got there first (409 Conflict), read again.
import { isStatus } from './errors.ts';

/** What an attempt returns to be run again at once (it wrote, and reads the result back). */
export const AGAIN: unique symbol = Symbol('again');

export interface RetryOptions<T> {
  /** Attempts in all (default 5). */
  attempts?: number;
  /** Which errors mean "lost the race: read again" (default 409 Conflict). */
  isConflict?: (e: unknown) => boolean;
  /** The answer (or the error thrown) when every attempt lost its race. */
  exhausted: () => T;
}

/** Runs `attempt` until it returns something other than AGAIN, retrying conflicts; other errors propagate. */
export async function retryOnConflict<T>(attempt: () => Promise<T | typeof AGAIN>, o: RetryOptions<T>): Promise<T> {
  const conflict = o.isConflict ?? ((e: unknown) => isStatus(e, 409));
  for (let n = 0; n < (o.attempts ?? 5); n++) {
    try {
      const r = await attempt();
      if (r !== AGAIN) return r;
    } catch (e) {
      if (!conflict(e)) throw e;
    }
  }
  return o.exhausted();
}
