/** Errors that become HTTP answers: a status, a stable code a client can test, and a message naming the problem. */

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    /** Extra response headers (e.g. Retry-After). */
    readonly headers: Record<string, string> = {},
    /**
     * What the message is about when that came from the client (its file name, bounded): the answer says
     * `${subject}: ${message}`, while logs get the message alone, so no client-chosen name reaches a log.
     */
    readonly subject?: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }

  /** The message the client gets. */
  get answer(): string {
    return this.subject === undefined ? this.message : `${this.subject}: ${this.message}`;
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
