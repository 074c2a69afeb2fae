// dynalite's request handling (validation, expression parsing, LevelDB) on a thread of its
// own, so that the registry does not compete with the workflow for the control plane's event
// loop. Plain JavaScript: a worker is loaded by Node itself, without the TypeScript loader.
import { parentPort, workerData } from 'node:worker_threads';
import dynalite from 'dynalite';

const server = dynalite({ path: workerData.path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
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
});
