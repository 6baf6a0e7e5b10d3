// `ice-test server …` and `ice-test peer …`: one command (and one file, once bundled) for both
// programs. It picks the program and hands the rest of argv over; each program parses its own
// flags. Programs are imported on demand, so `--version` and `--help` load neither.
import { VERSION, WEBRTC_STACK } from "../core/version.ts";
import { dispatching, exitWhenFlushed } from "./entry-point.ts";

const USAGE = `Usage: ice-test COMMAND [FLAGS]
Can these two machines open a WebRTC connection to each other, and if not, why not?

Commands:
  server   run the signaling server        (ice-test server --help)
  peer     run a peer: offerer or answerer (ice-test peer --help)

Flags:
  -h, --help     show this help
  -v, --version  show the version

Example:
  ice-test server -port 443 -self-signed
  ice-test peer -role offerer -signaling-addr https://signal.example.com`;

const COMMANDS = ["server", "peer"] as const;

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "server":
      dispatching();
      return (await import("../server/main.ts")).serverMain(rest);
    case "peer":
      dispatching();
      return (await import("../client-node/main.ts")).peerMain(rest);
    case "-v":
    case "-version":
    case "--version":
    case "version":
      print(`ice-test ${VERSION} (node ${process.versions.node}, ${WEBRTC_STACK})`);
      return 0;
    case "-h":
    case "-help":
    case "--help":
    case "help":
      print(USAGE);
      return 0;
    case undefined:
      process.stderr.write(`ice-test: which command? ${COMMANDS.join(" or ")}\n\n${USAGE}\n`);
      return 2;
    default:
      process.stderr.write(`ice-test: unknown command "${command}"\n${hint(command)}Run ice-test --help for the commands.\n`);
      return 2;
  }
}

/** Flags before the command are the likeliest slip: `ice-test -role offerer` meant a peer. */
function hint(command: string): string {
  if (command.startsWith("-")) return `  hint: the command comes first: ice-test peer ${command} … or ice-test server ${command} …\n`;
  const near = COMMANDS.find((name) => name.startsWith(command.slice(0, 2).toLowerCase()));
  return near ? `  hint: did you mean "${near}"?\n` : "";
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

main(process.argv.slice(2)).then(exitWhenFlushed, (err: unknown) => {
  process.stderr.write(`ice-test: ${err instanceof Error ? err.message : String(err)}\n`);
  exitWhenFlushed(1);
});
