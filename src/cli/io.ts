/** Where a command writes; tests pass their own to read the output in-process. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  readonly isTTY: boolean;
}

export const processIo: Io = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  isTTY: Boolean(process.stdout.isTTY),
};
