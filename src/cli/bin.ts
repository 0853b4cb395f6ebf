import { main } from './main.ts';

// The exit code is set, not forced, so the embedded server's own exit hooks still run.
process.exitCode = await main(process.argv.slice(2));
