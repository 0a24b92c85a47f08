/** Errors that become HTTP answers: a status, a stable code a client can test, and a message naming the problem. */

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    /** Extra response headers (e.g. Retry-After). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** The JSON body of every error answer. */
export interface ErrorBody {
  statusCode: number;
  /** The HTTP reason phrase, e.g. "Unprocessable Entity". */
  error: string;
  /** A stable identifier, e.g. CXR_UNREADABLE_IMAGE or FST_REQ_FILE_TOO_LARGE. */
  code: string;
  message: string;
  requestId: string;
}
