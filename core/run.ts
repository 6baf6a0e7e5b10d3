// The peer program, for any runtime: argv and a Runtime in, an exit code out.
import { EXIT_CODES, PeerFailure, asFailure } from "./failure.ts";
import { USAGE, parseCommand, type PeerOptions } from "./options.ts";
import { Report } from "./report.ts";
import { PeerSession } from "./session.ts";
import { describeSummary } from "./summary.ts";
import type { Runtime } from "./runtime.ts";
import { VERSION, WEBRTC_STACK } from "./version.ts";

export async function runPeer(argv: readonly string[], runtime: Runtime): Promise<number> {
  const json = argv.some((arg) => /^--?json(=true)?$/.test(arg));
  try {
    const command = parseCommand(argv, (name) => runtime.env(name));
    if (command.kind === "help") {
      runtime.out(USAGE);
      return EXIT_CODES.ok;
    }
    if (command.kind === "version") {
      runtime.out(`ice-test ${VERSION} (${runtime.description}, ${WEBRTC_STACK})`);
      return EXIT_CODES.ok;
    }
    return await runSession(command.options, runtime);
  } catch (err) {
    return reportEarlyFailure(asFailure(err), runtime, json);
  }
}

async function runSession(options: PeerOptions, runtime: Runtime): Promise<number> {
  const ca = options.caFile ? await readCa(options.caFile, runtime) : undefined;
  const turnCa = options.turnCaFile ? await readCa(options.turnCaFile, runtime, "--turn-ca") : undefined;
  const report = new Report((line) => runtime.out(line), options.json);
  const session = new PeerSession({
    options,
    connection: { target: options.signaling, ...(ca ? { ca } : {}), ...(options.tlsServerName ? { tlsServerName: options.tlsServerName } : {}) },
    report,
    runtime: `${runtime.description} ${WEBRTC_STACK}`,
    version: VERSION,
    ...(turnCa ? { turnCa } : {}),
  });
  const stopListening = runtime.onInterrupt(() => session.interrupt());
  try {
    const summary = await session.run();
    report.block("summary", describeSummary(summary), summary);
    if (summary.error) runtime.err(`ice-test: ${summary.error.message}`);
    return summary.exitCode;
  } finally {
    stopListening();
  }
}

async function readCa(path: string, runtime: Runtime, flag = "--ca"): Promise<string> {
  try {
    return await runtime.readTextFile(path);
  } catch (err) {
    throw new PeerFailure("usage", "usage", `Cannot read ${flag} ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function reportEarlyFailure(failure: PeerFailure, runtime: Runtime, json: boolean): number {
  if (json) {
    const error = { kind: failure.kind, reason: failure.reason, message: failure.message, hints: failure.hints };
    runtime.out(JSON.stringify({ t: 0, event: "summary", connected: false, error, exitCode: failure.exitCode }));
  }
  runtime.err(`ice-test: ${failure.message}`);
  for (const hint of failure.hints) runtime.err(`  hint: ${hint}`);
  if (failure.kind === "usage") runtime.err("Run with --help for the list of flags.");
  return failure.exitCode;
}
