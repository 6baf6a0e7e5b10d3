// The peer on Node: turns process globals into a Runtime and hands over to the shared core.
import { readFile } from "node:fs/promises";
import { runPeer } from "../core/run.ts";

const runtime = {
  description: `node ${process.versions.node}`,
  env: (name: string) => process.env[name],
  readTextFile: (path: string) => readFile(path, "utf8"),
  out: (line: string) => void process.stdout.write(`${line}\n`),
  err: (line: string) => void process.stderr.write(`${line}\n`),
  onInterrupt(handler: () => void) {
    process.on("SIGINT", handler);
    process.on("SIGTERM", handler);
    return () => {
      process.off("SIGINT", handler);
      process.off("SIGTERM", handler);
    };
  },
};

const code = await runPeer(process.argv.slice(2), runtime);
// werift leaves timers and sockets behind after close; exit once our output is flushed.
process.stdout.write("", () => process.exit(code));
