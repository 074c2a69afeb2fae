import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { WorkerPortHandler } from '../../local/registry-transport.js';

const request = {
  method: 'POST',
  path: '/',
  query: { a: 'x y', b: ['1', '2'] },
  headers: { 'Content-Type': 'application/x-amz-json-1.0', 'X-Amz-Target': 'DynamoDB_20120810.GetItem' },
  body: '{"TableName":"t"}',
};

let open: MessagePort[] = [];
afterEach(() => {
  for (const p of open) p.close();
  open = [];
});

/** A handler whose far end is `serve`, standing in for the registry thread. */
function handlerServedBy(serve: (message: Record<string, unknown>, port: MessagePort) => void) {
  const { port1, port2 } = new MessageChannel();
  open.push(port1, port2);
  port2.on('message', (m) => serve(m, port2));
  return new WorkerPortHandler(port1);
}

describe('WorkerPortHandler (the SDK request handler of the local registry)', () => {
  it('sends the request as the thread reads it and gives the SDK its response', async () => {
    const seen: Record<string, unknown>[] = [];
    const handler = handlerServedBy((m, port) => {
      seen.push(m);
      port.postMessage({
        id: m.id,
        statusCode: 400,
        headers: { 'x-amzn-requestid': 'r1' },
        body: '{"__type":"x#ValidationException"}',
      });
    });
    const { response } = await handler.handle(request);
    expect(seen).toEqual([
      {
        id: 0,
        method: 'POST',
        url: '/?a=x%20y&b=1&b=2',
        // as Node's HTTP server gives them to dynalite: lower case
        headers: {
          'content-type': 'application/x-amz-json-1.0',
          'x-amz-target': 'DynamoDB_20120810.GetItem',
        },
        body: '{"TableName":"t"}',
      },
    ]);
    expect(response.statusCode).toBe(400);
    expect(response.headers).toEqual({ 'x-amzn-requestid': 'r1' });
    expect(Buffer.from(response.body).toString()).toBe('{"__type":"x#ValidationException"}');
  });

  it('sends a body given as bytes as its text', async () => {
    const bodies: unknown[] = [];
    const handler = handlerServedBy((m, port) => {
      bodies.push(m.body);
      port.postMessage({ id: m.id, statusCode: 200, headers: {}, body: '{}' });
    });
    const bytes = new TextEncoder().encode('__{"TableName":"t"}__');
    await handler.handle({ ...request, body: bytes.subarray(2, bytes.length - 2) });
    expect(bodies).toEqual(['{"TableName":"t"}']);
  });

  it('matches replies to requests by id when they come back out of order', async () => {
    const held: Record<string, unknown>[] = [];
    const handler = handlerServedBy((m, port) => {
      held.push(m);
      if (held.length < 2) return;
      for (const h of held.reverse())
        port.postMessage({ id: h.id, statusCode: 200, headers: {}, body: h.body });
    });
    const [a, b] = await Promise.all([
      handler.handle({ ...request, body: 'first' }),
      handler.handle({ ...request, body: 'second' }),
    ]);
    expect(Buffer.from(a.response.body).toString()).toBe('first');
    expect(Buffer.from(b.response.body).toString()).toBe('second');
  });

  it("rejects with the thread's failure, an abort, and everything once failed", async () => {
    const failing = handlerServedBy((m, port) => port.postMessage({ id: m.id, failure: 'boom' }));
    await expect(failing.handle(request)).rejects.toThrow('registry: boom');

    const silent = handlerServedBy(() => {});
    const controller = new AbortController();
    const aborted = silent.handle(request, { abortSignal: controller.signal });
    controller.abort(new Error('gave up'));
    await expect(aborted).rejects.toThrow('gave up');

    const pending = silent.handle(request);
    silent.fail(new Error('the registry thread stopped'));
    await expect(pending).rejects.toThrow('the registry thread stopped');
    await expect(silent.handle(request)).rejects.toThrow('the registry thread stopped');
  });
});
