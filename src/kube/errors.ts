// The error every API call rejects with: the HTTP status and the Status reason.
// Its own module, so code that only recognises errors need not load the client
// (and @kubernetes/client-node with it).
export class ApiError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly body: unknown;
  constructor(status: number, reason: string, message: string, body: unknown) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.reason = reason;
    this.body = body;
  }
}

/** An API error with one of these HTTP statuses (404 not found, 409 conflict, ...). */
export function isStatus(e: unknown, ...statuses: number[]): boolean {
  return e instanceof ApiError && statuses.includes(e.status);
}

/**
 * A JSON patch whose `test` operation failed (the object changed since it was read). The API server
 * answers 422 with a generic message ("the server rejected our request due to an error in our
 * request") and the patch library's words in details.causes ("testing value ... failed").
 */
export function isPatchTestFailure(e: unknown): boolean {
  if (!(e instanceof ApiError) || e.status !== 422) return false;
  const causes = (e.body as { details?: { causes?: { message?: string }[] } } | undefined)?.details?.causes ?? [];
  return [e.message, ...causes.map((c) => c.message ?? '')].some((m) => /\btest(ing)?\b.*fail|test failed/i.test(m));
}
