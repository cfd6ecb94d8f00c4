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

export function isStatus(e: unknown, status: number): boolean {
  return e instanceof ApiError && e.status === status;
}
