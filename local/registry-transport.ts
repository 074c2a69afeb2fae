import type { MessagePort } from 'node:worker_threads';

/** What the SDK hands a request handler (`HttpRequest` of @smithy/core), as far as this one reads it. */
interface SdkRequest {
  readonly method: string;
  readonly path: string;
  readonly query?: Record<string, string | (string | null)[] | null>;
  readonly headers: Record<string, string>;
  readonly body?: unknown;
}

interface SdkResponse {
  readonly response: { statusCode: number; headers: Record<string, string>; body: Uint8Array };
}

interface Reply {
  readonly id: number;
  readonly statusCode?: number;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  readonly failure?: string;
}

/**
 * The AWS SDK's request handler for the local registry: each signed HTTP request goes to the
 * dynalite thread (registry-worker.mjs) as a message on a MessagePort, and dynalite's own
 * request handler answers it there, as it would over its HTTP port. Everything above the
 * transport (the DynamoDB adapter, serialization, SigV4, retries) is the SDK's, as on AWS.
 *
 * Why: on this kind of machine an HTTP round trip over loopback between two threads costs
 * 0.3 to 0.4 ms of CPU (the request, parsing and writev on both sides), against 0.03 to
 * 0.08 ms for a round trip of messages, and a clone makes three registry writes on its
 * critical path (docs/ARCHITECTURE.md, "Measured: the clone path").
 */
export class WorkerPortHandler {
  private next = 0;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private closed: Error | null = null;

  constructor(private readonly port: MessagePort) {
    port.on('message', (reply: Reply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      waiter.resolve(reply);
    });
    // The registry thread keeps the process alive while it runs; the port need not.
    port.unref();
  }

  async handle(request: SdkRequest, options?: { abortSignal?: unknown }): Promise<SdkResponse> {
    if (this.closed) throw this.closed;
    const signal = options?.abortSignal instanceof AbortSignal ? options.abortSignal : undefined;
    signal?.throwIfAborted();
    const query = Object.entries(request.query ?? {}).flatMap(([k, v]) =>
      (Array.isArray(v) ? v : [v]).map((x) => `${encodeURIComponent(k)}=${encodeURIComponent(x ?? '')}`),
    );
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(request.headers)) headers[k.toLowerCase()] = v;
    const { body } = request;
    const id = this.next++;
    const reply = await new Promise<Reply>((resolve, reject) => {
      const onAbort = () => {
        this.pending.delete(id);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        resolve: (r) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(r);
        },
        reject,
      });
      this.port.postMessage({
        id,
        method: request.method,
        url: `${request.path}${query.length ? `?${query.join('&')}` : ''}`,
        headers,
        body: typeof body === 'string' ? body : body instanceof Uint8Array ? utf8(body) : '',
      });
    });
    if (reply.failure !== undefined) throw new Error(`registry: ${reply.failure}`);
    return {
      response: {
        statusCode: reply.statusCode ?? 500,
        headers: reply.headers ?? {},
        body: Buffer.from(reply.body ?? '', 'utf8'),
      },
    };
  }

  /** Fails every request in flight, and every later one with the first reason (closed, or the thread stopped). */
  fail(error: Error): void {
    this.closed ??= error;
    for (const [id, waiter] of this.pending) {
      this.pending.delete(id);
      waiter.reject(error);
    }
    this.port.close();
  }

  destroy(): void {
    this.fail(new Error('the registry client is closed'));
  }

  updateHttpClientConfig(): void {}

  httpHandlerConfigs(): Record<string, never> {
    return {};
  }
}

/**
 * The text of a body the SDK gave as bytes, read through a view of its memory: the SDK's JSON
 * bodies are a Uint8Array whose valueOf() is a string, which Buffer.from(body) would call.
 */
function utf8(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}
