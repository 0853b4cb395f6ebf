/**
 * Checking out an agent connection: within a time limit, and with a guard on the size of every
 * message the server sends on it.
 *
 * Why the guard: node-postgres (pg-protocol) buffers each protocol message whole before handing
 * it over, so the response byte cap, which counts rows as they are parsed, bounds nothing while
 * one row arrives. `SELECT repeat('x', 200000000)` grew the gateway past 550 MB before the cap
 * cut it, and a row past V8's string limit (~512 MiB) threw inside the socket's data handler and
 * killed the process. The guard reads the 5-byte message headers (type, length) as data arrives,
 * before the parser, and destroys the socket as soon as one message announces more than the
 * limit: the gateway holds at most a chunk of it.
 *
 * Why the error listener: a checked-out pg client whose socket fails emits 'error', and pg-pool
 * listens only while the client is idle; with no listener that event kills the process.
 */
import type { Duplex } from 'node:stream';
import type pg from 'pg';

/** The server sent one message larger than the limit; the connection was destroyed. */
export class ResultTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`a message from the database exceeded ${limit} bytes`);
    this.name = 'ResultTooLargeError';
  }
}

/** No pooled connection became free within the time limit. */
export class PoolTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`no connection was free within ${timeoutMs} ms`);
    this.name = 'PoolTimeoutError';
  }
}

interface Guard {
  limit: number;
  tripped: boolean;
}

const guards = new WeakMap<object, Guard>();

/** A connection from `pool` within `timeoutMs`, guarded against messages over `maxMessageBytes`. */
export async function checkout(pool: pg.Pool, timeoutMs: number, maxMessageBytes: number): Promise<pg.PoolClient> {
  const pending = pool.connect();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new PoolTimeoutError(timeoutMs)), timeoutMs);
  });
  let client: pg.PoolClient;
  try {
    client = await Promise.race([pending, timeout]);
  } catch (error) {
    // The request stays queued in the pool: hand the connection back whenever it comes.
    if (error instanceof PoolTimeoutError) pending.then((c) => c.release(), () => undefined);
    throw error;
  } finally {
    clearTimeout(timer);
  }
  guard(client, maxMessageBytes);
  return client;
}

/** Whether the guard destroyed this client's connection for an oversized message. */
export function tripped(client: pg.PoolClient): boolean {
  return guards.get(client)?.tripped === true;
}

/**
 * Installs the guard once per client. The client is idle when checked out (the server has
 * answered everything asked of it), so the stream is at a message boundary.
 */
function guard(client: pg.PoolClient, limit: number): void {
  const existing = guards.get(client);
  if (existing) {
    existing.limit = limit;
    return;
  }
  const stream = (client as unknown as { connection?: { stream?: Duplex } }).connection?.stream;
  const state: Guard = { limit, tripped: false };
  guards.set(client, state);
  client.on('error', () => undefined); // see the header: never an unhandled 'error' event
  if (!stream) return;
  const header = Buffer.alloc(5);
  let filled = 0;
  let remaining = 0; // bytes of the current message's body still to come
  stream.prependListener('data', (chunk: Buffer) => {
    let i = 0;
    while (i < chunk.length && !state.tripped) {
      if (remaining > 0) {
        const skip = Math.min(remaining, chunk.length - i);
        remaining -= skip;
        i += skip;
        continue;
      }
      const take = Math.min(5 - filled, chunk.length - i);
      chunk.copy(header, filled, i, i + take);
      filled += take;
      i += take;
      if (filled < 5) break;
      filled = 0;
      const length = header.readUInt32BE(1); // counts itself, not the type byte
      remaining = length - 4;
      if (length > state.limit) {
        state.tripped = true;
        stream.destroy(new ResultTooLargeError(state.limit));
      }
    }
  });
}
