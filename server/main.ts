// The server's process: argv and environment in, log lines on stdout (JSON, or text on a terminal),
// a drain on SIGINT/SIGTERM, TLS reloads on SIGHUP and when the certificate files change. Errors
// are one line on stderr: exit 2 for usage, 1 for the rest.
import { writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { isEntryPoint } from "../cli/entry-point.ts";
import { cliHint, ListenError } from "./listen-error.ts";
import { programName } from "../core/flags.ts";
import { VERSION } from "../core/version.ts";
import { loadAuth, publicWithoutAuth } from "./auth-files.ts";
import { logLine, logMessage, type Log } from "./log.ts";
import { createLogSink } from "./log-sink.ts";
import { DEFAULT_PROGRAM, parseServerCommand, serverUsage, UsageError, type ServerCliOptions, type TlsMode } from "./options.ts";
import type { RunningServer } from "./server.ts";
import { nextStopSignal } from "./shutdown.ts";
import type { ServerTls } from "./tls-credentials.ts";
import { loadServerTls, readClientCa, TlsReloader } from "./tls-reload.ts";
import { DEFAULT_SELF_SIGNED_HOSTS, selfSignedTls } from "./tls.ts";

/** Prefix of error lines; INVOCATION is what the user typed to start us, for commands in messages. */
const PROGRAM = DEFAULT_PROGRAM;
const { program: INVOCATION, npmScript } = programName((name) => process.env[name], DEFAULT_PROGRAM, /server\/main\.ts|cli\/ice-test\.ts server/);

async function main(argv: readonly string[]): Promise<number> {
  const command = parseServerCommand(argv, (name) => process.env[name], { program: INVOCATION, npmScript });
  if (command.kind === "help") {
    process.stdout.write(`${serverUsage(INVOCATION)}\n`);
    return 0;
  }
  if (command.kind === "version") {
    process.stdout.write(`${PROGRAM} ${VERSION} (node ${process.versions.node})\n`);
    return 0;
  }
  const { options } = command;
  // grpc-js logs bind failures itself; we report them once, in our words. GRPC_NODE_VERBOSITY still works.
  if (process.env.GRPC_NODE_VERBOSITY === undefined) grpc.setLogVerbosity(grpc.logVerbosity.NONE);
  const { ops } = options;
  const log = createLogSink({ format: ops.logFormat ?? (process.stdout.isTTY ? "text" : "json"), level: ops.logLevel });
  const tls = await prepareTls(options.tls, ops.tlsClientCa, log);
  const metrics = ops.metricsPort === undefined ? undefined : { host: ops.metricsHost, port: ops.metricsPort };
  // Loaded only now: health, reflection and metrics parse protos and build registries at import,
  // which --help and usage errors need not wait for.
  const { startServer } = await import("./server.ts");
  const server = await startServer({ ...options, tls, auth: await loadAuth(options.auth), log, metrics });
  const reloader = tlsReloader(options.tls, ops.tlsClientCa, tls, server, log);
  reloader?.watch();
  const onHangup = () => (reloader ? void reloader.reload("SIGHUP") : log(logLine("reload-skipped", { reason: "no TLS files to reload" })));
  // Handlers before "listening": whoever waits for that line may signal at once, and a SIGTERM
  // before them would kill the process without its drain.
  const stopSignal = nextStopSignal({ onHangup, log });
  log(logMessage("listening", `listening on ${describeListen(options, server)}`, { port: server.port, "stun-port": server.stunPort ?? undefined, "metrics-port": server.metricsPort ?? undefined }));
  const warning = publicWithoutAuth(options.host, options.auth);
  if (warning) log(logMessage("warning", warning, {}, "warn"));
  const signal = await stopSignal;
  log(logLine("stopping", { signal, grace: `${ops.shutdownGraceMs}ms` }));
  reloader?.close();
  await server.shutdown(ops.shutdownGraceMs);
  log(logLine("stopped", {}));
  return 0;
}

async function prepareTls(mode: TlsMode, clientCaFile: string | undefined, log: Log): Promise<ServerTls | null> {
  switch (mode.kind) {
    case "insecure":
      return null;
    case "files":
      return loadServerTls({ certFile: mode.certFile, keyFile: mode.keyFile, clientCaFile });
    case "self-signed": {
      const material = await selfSignedTls(mode.hosts);
      const names = [...new Set([...DEFAULT_SELF_SIGNED_HOSTS, ...mode.hosts])].join(",");
      if (mode.certOut) await writeCertificate(mode.certOut, material.cert);
      log(logLine("self-signed", { names, "cert-out": mode.certOut }));
      return clientCaFile ? { ...material, clientCa: await readClientCa(clientCaFile) } : material;
    }
  }
}

/** Only certificates from files can change; a self-signed one lives as long as the process. */
function tlsReloader(mode: TlsMode, clientCaFile: string | undefined, tls: ServerTls | null, server: RunningServer, log: Log): TlsReloader | null {
  if (mode.kind !== "files" || !tls) return null;
  return new TlsReloader({ certFile: mode.certFile, keyFile: mode.keyFile, clientCaFile }, tls, server.reloadTls, log);
}

async function writeCertificate(file: string, pem: string): Promise<void> {
  try {
    await writeFile(file, pem);
  } catch (err) {
    throw new Error(`Cannot write the certificate to "${file}": ${(err as Error).message}`, { cause: err });
  }
}

function describeListen(options: ServerCliOptions, server: RunningServer): string {
  const host = isIP(options.host) === 6 ? `[${options.host}]` : options.host;
  const mode = options.tls.kind === "insecure" ? "insecure" : options.tls.kind === "self-signed" ? "tls, self-signed" : "tls";
  const alt = server.stunAltPort === null ? "" : ` and udp/${server.stunAltPort}`;
  const stun = server.stunPort === null ? "stun off" : `stun udp/${server.stunPort}${alt}`;
  return `${host}:${server.port} (${mode}) ${stun}`;
}

/** One line a person can act on; listen failures get the flag that fixes them. */
function describeFailure(err: unknown): string {
  if (err instanceof ListenError) return `${err.message}${cliHint(err)}`;
  return err instanceof Error ? err.message : String(err);
}

/** The server program (`ice-test server …`): runs until a signal, resolves with the exit code. */
export function serverMain(argv: readonly string[]): Promise<number> {
  return main(argv).catch((err: unknown) => {
    if (err instanceof UsageError) {
      const hints = err.hints.map((hint) => `  ${hint}\n`).join("");
      process.stderr.write(`${PROGRAM}: ${err.message}\n${hints}Run ${INVOCATION} --help for the options.\n`);
      return 2;
    }
    process.stderr.write(`${PROGRAM}: ${describeFailure(err)}\n`);
    return 1;
  });
}

if (isEntryPoint(import.meta.url)) void serverMain(process.argv.slice(2)).then((code) => process.exit(code));
