// Builds the standard `Request`s the REST handlers take, without going through a server.

export const BASE_URL = "http://localhost";

export type HeaderMap = Record<string, string>;

/**
 * A request body as the test wants to send it. Strings are sent as bytes, so no Content-Type is
 * added behind the test's back (a string body makes `Request` add `text/plain`).
 */
export type RawBody = string | Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array<ArrayBuffer>>;

export function url(path: string): string {
  return `${BASE_URL}${path}`;
}

/** A request with exactly the headers given; a ReadableStream body is sent without Content-Length. */
export function rawRequest(method: string, path: string, options: { body?: RawBody; headers?: HeaderMap } = {}): Request {
  const { body, headers = {} } = options;
  const init: RequestInit & { duplex?: "half" } = { method, headers };
  if (body !== undefined) {
    init.body = typeof body === "string" ? new TextEncoder().encode(body) : body;
    if (body instanceof ReadableStream) init.duplex = "half";
  }
  return new Request(url(path), init);
}

/** A JSON request: `value` is serialised and sent with `Content-Type: application/json`. */
export function jsonRequest(method: string, path: string, value: unknown, headers: HeaderMap = {}): Request {
  return rawRequest(method, path, {
    body: JSON.stringify(value),
    headers: { "content-type": "application/json", ...headers },
  });
}

/** A body that arrives as a stream of `chunks` (no Content-Length), as a chunked upload would. */
export function streamOf(chunks: Array<string | Uint8Array<ArrayBuffer>>): ReadableStream<Uint8Array<ArrayBuffer>> {
  const encoded = chunks.map((c) => (typeof c === "string" ? new TextEncoder().encode(c) : c));
  let i = 0;
  return new ReadableStream<Uint8Array<ArrayBuffer>>({
    pull(controller) {
      const next = encoded[i++];
      if (next === undefined) controller.close();
      else controller.enqueue(next);
    },
  });
}

/** Number of UTF-8 bytes in `text`. */
export function byteLength(text: string): number {
  return new TextEncoder().encode(text).byteLength;
}
