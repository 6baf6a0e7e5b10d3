// What the core needs from the runtime it runs on. Each client's main.ts builds one of these from
// its own globals (process or Deno), so nothing under core/ touches either.
export interface Runtime {
  /** "node 20.20.2" or "deno 2.9.6". */
  readonly description: string;
  env(name: string): string | undefined;
  readTextFile(path: string): Promise<string>;
  /** Writes one line to standard output. */
  out(line: string): void;
  /** Writes one line to standard error. */
  err(line: string): void;
  /** Only when standard output is a terminal: replaces the live status line ("" clears it). */
  status?(text: string): void;
  /** Calls `handler` on Ctrl-C or SIGTERM; returns the function that stops listening. */
  onInterrupt(handler: () => void): () => void;
  /**
   * Calls `handler` instead of dying on an error nothing caught: thrown in a callback, or a
   * rejection nobody awaited. For the rest of the process's life.
   */
  onUncaught(handler: (err: unknown) => void): void;
}
