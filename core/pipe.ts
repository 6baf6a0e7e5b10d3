// Output to a pipe whose reader has gone (`peer | head`, or Ctrl-C killing `peer | tee`) must not
// end the run in a stack trace: Node reports EPIPE, Deno throws BrokenPipe. Once the pipe is
// closed, further lines are dropped and the run finishes with its own exit code.

export function isClosedPipe(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as Error & { code?: unknown }).code;
  return code === "EPIPE" || err.name === "BrokenPipe" || /broken pipe/i.test(err.message);
}

/** `write`, but silent after the reader closed the pipe; other errors still throw. */
export function tolerateClosedPipe(write: (line: string) => void): (line: string) => void {
  let closed = false;
  return (line) => {
    if (closed) return;
    try {
      write(line);
    } catch (err) {
      if (!isClosedPipe(err)) throw err;
      closed = true;
    }
  };
}
