// The peer program, for any runtime: argv and a Runtime in, an exit code out. The session (werift,
// grpc-js) is imported once there is one to run: --help, --version and usage errors answer without.
import { EXIT_CODES, PeerFailure, asFailure } from "./failure.ts";
import { programName } from "./flags.ts";
import { DEFAULT_PROGRAM, parseCommand, peerUsage, type PeerOptions } from "./options.ts";
import { ProgressReport } from "./progress.ts";
import { sanitize } from "./sanitize.ts";
import type { Runtime } from "./runtime.ts";
import { noCandidateHints } from "./host-hints.ts";
import type { Summary } from "./summary.ts";
import { VERSION, WEBRTC_STACK } from "./version.ts";

/**
 * `program` is how the user starts the peer (`ice-test peer`), for the commands that messages
 * name; under `npm run peer:node` that script's name wins.
 */
export async function runPeer(argv: readonly string[], runtime: Runtime, program = DEFAULT_PROGRAM): Promise<number> {
  const json = argv.some((arg) => /^--?json(=true)?$/.test(arg));
  const context = programName((name) => runtime.env(name), program, /client-(node|deno)\/main\.ts|cli\/ice-test\.ts peer/);
  try {
    const command = parseCommand(argv, (name) => runtime.env(name), context);
    if (command.kind === "help") {
      runtime.out(peerUsage(context.program));
      return EXIT_CODES.ok;
    }
    if (command.kind === "version") {
      runtime.out(`ice-test ${VERSION} (${runtime.description}, ${WEBRTC_STACK})`);
      return EXIT_CODES.ok;
    }
    return await runSession(command.options, runtime);
  } catch (err) {
    return reportEarlyFailure(asFailure(err), runtime, json, context.program);
  }
}

async function runSession(options: PeerOptions, runtime: Runtime): Promise<number> {
  const [{ PeerSession }, { describeSummary }, { checkCaPem }] = await Promise.all([import("./session.ts"), import("./summary.ts"), import("./signaling-tls.ts")]);
  const ca = options.caFile ? await readCa(options.caFile, runtime, checkCaPem) : undefined;
  const turnCa = options.turnCaFile ? await readCa(options.turnCaFile, runtime, checkCaPem, "--turn-ca") : undefined;
  const report = new ProgressReport({ line: (line) => runtime.out(line), ...(runtime.status ? { status: (text: string) => runtime.status!(text) } : {}) }, options.json, options.room, options.role);
  const session = new PeerSession({
    options,
    connection: { target: options.signaling, ...(ca ? { ca } : {}), ...(options.tlsServerName ? { tlsServerName: options.tlsServerName } : {}), apiKey: options.apiKey, token: options.token },
    report,
    runtime: `${runtime.description} ${WEBRTC_STACK}`,
    version: VERSION,
    ...(turnCa ? { turnCa } : {}),
  });
  const stopListening = runtime.onInterrupt(() => session.interrupt());
  runtime.onUncaught((err) => {
    runtime.err("ice-test: internal error, a bug in ice-test or a library it uses (please report it with these lines):");
    const stack = err instanceof Error ? (err.stack ?? err.message) : String(err);
    for (const line of stack.split("\n")) runtime.err(`  ${sanitize(line)}`);
    session.abort(err);
  });
  try {
    const summary = withHostHints(await session.run(), runtime.description);
    report.block("summary", describeSummary(summary), summary);
    // In text the summary says it; next to JSON on stdout, a person still gets one line.
    if (summary.error && options.json) runtime.err(`ice-test: ${sanitize(summary.error.message)}`);
    return summary.exitCode;
  } finally {
    report.stop();
    stopListening();
  }
}

async function readCa(path: string, runtime: Runtime, checkCaPem: (path: string, text: string) => string, flag = "--ca"): Promise<string> {
  let text: string;
  try {
    text = await runtime.readTextFile(path);
  } catch (err) {
    throw new PeerFailure("usage", "usage", `Cannot read ${flag} ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return checkCaPem(path, text);
}

function reportEarlyFailure(failure: PeerFailure, runtime: Runtime, json: boolean, program: string): number {
  if (json) {
    const error = { kind: failure.kind, reason: failure.reason, message: failure.message, hints: failure.hints };
    runtime.out(JSON.stringify({ t: 0, time: new Date().toISOString(), event: "summary", connected: false, error, exitCode: failure.exitCode }));
  }
  runtime.err(`ice-test: ${sanitize(failure.message)}`);
  for (const hint of failure.hints) runtime.err(`  hint: ${sanitize(hint)}`);
  if (failure.reason === "usage") runtime.err(`Run ${program} --help for the list of flags.`);
  return failure.exitCode;
}

/** The diagnosis knows what the peer saw; only the runtime knows the host's interfaces. */
function withHostHints(summary: Summary, runtime: string): Summary {
  if (summary.error?.reason !== "no-local-candidates") return summary;
  return { ...summary, error: { ...summary.error, hints: noCandidateHints(runtime) } };
}
