// The server's process: argv and environment in, one startup line, log lines on stdout, a clean
// shutdown on SIGINT/SIGTERM. Errors are one line on stderr: exit 2 for usage, 1 for the rest.
import { writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { cliHint, ListenError } from "./listen-error.ts";
import { logLine } from "./log.ts";
import { parseServerCommand, UsageError, USAGE, type ServerCliOptions, type TlsMode } from "./options.ts";
import { startServer, type RunningServer } from "./server.ts";
import { DEFAULT_SELF_SIGNED_HOSTS, loadTlsFiles, selfSignedTls, type TlsMaterial } from "./tls.ts";

const PROGRAM = "ice-test-server";

async function main(): Promise<number> {
  const command = parseServerCommand(process.argv.slice(2), (name) => process.env[name]);
  if (command.kind === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { options } = command;
  // grpc-js logs bind failures itself; we report them once, in our words. GRPC_NODE_VERBOSITY still works.
  if (process.env.GRPC_NODE_VERBOSITY === undefined) grpc.setLogVerbosity(grpc.logVerbosity.NONE);
  const tls = await prepareTls(options.tls);
  const server = await startServer({ ...options, tls, log: print });
  print(`${logLine("listening", {})} on ${describeListen(options, server)}`);
  const signal = await nextSignal();
  print(logLine("stopping", { signal }));
  // A second signal means "now": do not wait for the grace period.
  process.once("SIGINT", () => process.exit(1));
  process.once("SIGTERM", () => process.exit(1));
  await server.shutdown();
  print(logLine("stopped", {}));
  return 0;
}

async function prepareTls(mode: TlsMode): Promise<TlsMaterial | null> {
  switch (mode.kind) {
    case "insecure":
      return null;
    case "files":
      return loadTlsFiles(mode.certFile, mode.keyFile);
    case "self-signed": {
      const material = await selfSignedTls(mode.hosts);
      const names = [...new Set([...DEFAULT_SELF_SIGNED_HOSTS, ...mode.hosts])].join(",");
      if (mode.certOut) await writeCertificate(mode.certOut, material.cert);
      print(logLine("self-signed", { names, "cert-out": mode.certOut }));
      return material;
    }
  }
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

function nextSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
  });
}

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** One line a person can act on; listen failures get the flag that fixes them. */
function describeFailure(err: unknown): string {
  if (err instanceof ListenError) return `${err.message}${cliHint(err)}`;
  return err instanceof Error ? err.message : String(err);
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`${PROGRAM}: ${err.message}\nRun ${PROGRAM} --help for the options.\n`);
      process.exit(2);
    }
    process.stderr.write(`${PROGRAM}: ${describeFailure(err)}\n`);
    process.exit(1);
  },
);
