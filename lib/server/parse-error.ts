/**
 * A fault in the bytes a client sent. It carries the status the server
 * answers with (400, 413, 414, 431, 501, 505, …) and a message that says what
 * was wrong, which is safe to show to the client: it only describes the
 * client's own request.
 */
export class ParseError extends Error {
  readonly status: number
  constructor(status: number, message: string) {
    super(message)
    this.name = 'ParseError'
    this.status = status
  }
}
