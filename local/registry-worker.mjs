// dynalite's request handling (validation, expression parsing, LevelDB) on a thread of its
// own, so that the registry does not compete with the workflow for the control plane's event
// loop. Plain JavaScript: a worker is loaded by Node itself, without the TypeScript loader.
//
// Two ways in, to the same dynalite request handler: its HTTP server on a loopback port (for
// any DynamoDB client, e.g. `aws dynamodb scan --endpoint-url`), and a MessagePort that
// carries this process's own SDK requests (registry-transport.ts) without a TCP round trip.
import { EventEmitter } from 'node:events';
import { parentPort, workerData } from 'node:worker_threads';
import dynalite from 'dynalite';

const server = dynalite({ path: workerData.path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
const handle = server.listeners('request')[0];
server.once('error', (error) => parentPort.postMessage({ type: 'error', message: error.message }));
server.listen(0, '127.0.0.1', () =>
  parentPort.postMessage({ type: 'listening', port: server.address().port }),
);
parentPort.on('message', (message) => {
  if (message === 'close')
    server.close(() => {
      parentPort.postMessage({ type: 'closed' });
      parentPort.close();
    });
  else if (message?.type === 'port') serve(message.port);
});

/**
 * Answers each `{ id, method, url, headers, body }` on `port` with `{ id, statusCode, headers,
 * body }`, through dynalite's own handler: it reads a request as events and headers, and
 * answers with statusCode, setHeader and end, which is all these two stand-ins provide.
 */
function serve(port) {
  port.on('message', ({ id, method, url, headers, body }) => {
    const responseHeaders = {};
    const res = {
      statusCode: 200,
      setHeader(name, value) {
        responseHeaders[name.toLowerCase()] = String(value);
      },
      end(data) {
        port.postMessage({
          id,
          statusCode: res.statusCode,
          headers: responseHeaders,
          body: data === undefined ? '' : String(data),
        });
      },
    };
    const req = Object.assign(new EventEmitter(), { method, url, headers });
    try {
      handle(req, res);
      if (body) req.emit('data', Buffer.from(body, 'utf8'));
      req.emit('end');
    } catch (error) {
      port.postMessage({ id, failure: String(error?.message ?? error) });
    }
  });
}
