// Started by embedded.test.ts: starts an embedded server, reports it, then waits to be killed.
import { startEmbedded } from '../../src/embedded/index.ts';

const server = await startEmbedded();
process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
setInterval(() => undefined, 1000);
