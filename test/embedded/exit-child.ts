// Started by exit-code.test.ts: starts and stops an embedded server, then ends with exit code 3.
import { startEmbedded } from '../../src/embedded/index.ts';

const server = await startEmbedded();
await server.stop();
process.exitCode = 3;
