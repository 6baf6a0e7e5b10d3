// The peer on Deno: turns Deno globals into a Runtime and hands over to the shared core.
// Permissions: --allow-net (signaling, ICE), --allow-env (grpc-js reads GRPC_* variables),
// --allow-sys=networkInterfaces (werift enumerates interfaces, or gathers nothing, silently),
// --allow-read (the --ca file and node_modules).
import { tolerateClosedPipe } from "../core/pipe.ts";
import { runPeer } from "../core/run.ts";

const encoder = new TextEncoder();
const signals = ["SIGINT", "SIGTERM"] as const;

const runtime = {
  description: `deno ${Deno.version.deno}`,
  env: (name: string) => Deno.env.get(name),
  readTextFile: (path: string) => Deno.readTextFile(path),
  // Deno throws BrokenPipe when the reader has gone (`| head`, or Ctrl-C on `| tee`): drop the rest.
  out: tolerateClosedPipe((line: string) => void Deno.stdout.writeSync(encoder.encode(`${line}\n`))),
  err: tolerateClosedPipe((line: string) => void Deno.stderr.writeSync(encoder.encode(`${line}\n`))),
  ...(Deno.stdout.isTerminal() ? { status: (text: string) => void Deno.stdout.writeSync(encoder.encode(`\r\x1b[K${text}`)) } : {}),
  onInterrupt(handler: () => void) {
    for (const signal of signals) Deno.addSignalListener(signal, handler);
    return () => signals.forEach((signal) => Deno.removeSignalListener(signal, handler));
  },
  onUncaught(handler: (err: unknown) => void) {
    globalThis.addEventListener("error", (event) => {
      event.preventDefault();
      handler(event.error);
    });
    globalThis.addEventListener("unhandledrejection", (event) => {
      event.preventDefault();
      handler(event.reason);
    });
  },
};

// No top-level await: the bundle runs this as a classic script (scripts/deno-bundle.ts).
// werift leaves timers and sockets behind after close: exit explicitly, but from a timer: Deno
// stores its code cache for the modules it compiled once their evaluation has settled, and an exit
// in the same turn (`--version`) lost it, so the next start compiled them all again.
runPeer(Deno.args, runtime).then((code) => setTimeout(() => Deno.exit(code)));
