// The peer on Node: turns process globals into a Runtime and hands over to the shared core.
import { readFile } from "node:fs/promises";
import { exitWhenFlushed, isEntryPoint } from "../cli/entry-point.ts";
import { isClosedPipe, tolerateClosedPipe } from "../core/pipe.ts";
import { runPeer } from "../core/run.ts";

// A closed pipe shows up as an "error" event on the stream; without a listener it is a crash.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err) => {
    if (!isClosedPipe(err)) throw err;
  });
}

const runtime = {
  description: `node ${process.versions.node}`,
  env: (name: string) => process.env[name],
  readTextFile: (path: string) => readFile(path, "utf8"),
  out: tolerateClosedPipe((line: string) => void process.stdout.write(`${line}\n`)),
  err: tolerateClosedPipe((line: string) => void process.stderr.write(`${line}\n`)),
  ...(process.stdout.isTTY ? { status: (text: string) => void process.stdout.write(`\r\x1b[K${text}`) } : {}),
  onInterrupt(handler: () => void) {
    process.on("SIGINT", handler);
    process.on("SIGTERM", handler);
    return () => {
      process.off("SIGINT", handler);
      process.off("SIGTERM", handler);
    };
  },
  onUncaught(handler: (err: unknown) => void) {
    process.on("uncaughtException", handler);
    process.on("unhandledRejection", handler);
  },
};

/** The peer program (`ice-test peer …`): resolves with the exit code. */
export function peerMain(argv: readonly string[]): Promise<number> {
  return runPeer(argv, runtime);
}

if (isEntryPoint(import.meta.url)) void peerMain(process.argv.slice(2)).then(exitWhenFlushed);
