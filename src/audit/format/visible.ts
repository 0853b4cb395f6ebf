/**
 * Text from the database (names, policy text) can hold control characters: an ESC in a table name
 * repaints a terminal (`\x1b[2J`), a carriage return hides what came before it. Reports show them
 * as `\xNN` instead: C0 controls, DEL, and the C1 range (U+0080–U+009F, where U+009B is a one-byte
 * CSI to some terminals). Newlines survive only where a format splits on them (remediation SQL).
 */
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;
const CONTROLS_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g;

export function visible(text: string, keepNewlines = false): string {
  return text.replace(keepNewlines ? CONTROLS_BUT_NEWLINE : CONTROLS, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
