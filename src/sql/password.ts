/**
 * Role passwords for `init --app-password/--agent-password` (issue 9, item 5). The password comes
 * from the environment (argv shows in `ps` and shell history) and is sent as a SCRAM-SHA-256
 * verifier computed here (RFC 5802/7677, as PostgreSQL stores it), so the plain password never
 * reaches the server or its statement log, and the statement is never printed.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { ident, literal } from './quote.ts';
import { sql, type Statement } from './statement.ts';

const ITERATIONS = 4096;

/**
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. PostgreSQL SASLpreps the password;
 * NFKC is SASLprep's normalisation, which is all it changes for passwords of printable characters.
 */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = ITERATIONS): string {
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

export function passwordStatement(role: string, password: string, source: string): Statement {
  // An empty parameter list keeps --print from showing it (statements with values are never printed).
  return sql(`ALTER ROLE ${ident(role)} PASSWORD ${literal(scramVerifier(password))}`, [], `the password of ${role} (from ${source}) is set as a SCRAM verifier and never printed`);
}
