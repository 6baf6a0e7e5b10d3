// The server as an operator runs it (a separate process), plus its flag parsing as a pure function.
import { spawn, type SpawnOptions } from "node:child_process";
import { X509Certificate } from "node:crypto";
import dgram from "node:dgram";
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import net from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import t, { type Test } from "tap";
import { SignalingServiceClient, type RegisterResponse, type SubscribeResponse } from "../gen/icetest/signaling/v1/signaling.ts";
import { cliHint, toListenError } from "../server/listen-error.ts";
import { parseServerCommand, UsageError, type ServerCliOptions } from "../server/options.ts";
import { loadTlsFiles, selfSignedTls } from "../server/tls.ts";
import { nodePrograms } from "./fixtures/node-bundles.ts";
import { untapped } from "./fixtures/untapped.ts";
import type { Teardown } from "./fixtures/server.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DEADLINE_MS = 10_000;
const LISTENING = /listening on (\S+):(\d+) \(([^)]+)\) stun (?:udp\/(\d+)|off)/;
/** The server program, bundled (see node-bundles.ts). */
const { server: SERVER } = await nodePrograms();

// ---------------------------------------------------------------------------------------------
// A server process: its output lines, a way to await one, and its exit.

interface ServerProcess {
  stdout: string[];
  stderr: string[];
  /** Resolves with the first stdout line matching `pattern`. */
  line(pattern: RegExp): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (128 + n for signal n). */
  exited: Promise<number>;
  signal(name: NodeJS.Signals): void;
}

/** Another user to run as. */
type RunAs = Pick<SpawnOptions, "uid" | "gid">;

function startProcess(t: Teardown, args: string[], runAs?: RunAs): ServerProcess {
  // The child must not inherit an operator's ICE_TEST_* settings.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(ICE_TEST_|TURN_)/.test(name)));
  env.ICE_TEST_LOG_FORMAT = "text"; // the lines these tests read; JSON logs have their own tests
  // Without tap's hooks, which as another user could not write .tap/ anyway.
  const [command, ...argv] = [...untapped(process.execPath, SERVER), ...args];
  const child = spawn(command!, argv, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], ...runAs });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: child.stdout! }).on("line", (line) => {
    stdout.push(line);
    for (const wake of waiters.splice(0)) wake();
  });
  createInterface({ input: child.stderr! }).on("line", (line) => stderr.push(line));
  const exited = new Promise<number>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => resolve(code ?? 128 + (signal === "SIGKILL" ? 9 : 15)));
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    return exited;
  });

  const line = async (pattern: RegExp) => {
    const deadline = Date.now() + DEADLINE_MS;
    for (;;) {
      const match = stdout.map((text) => pattern.exec(text)).find(Boolean);
      if (match) return match;
      if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}) before printing ${pattern}: ${stderr.join(" | ")}`);
      if (Date.now() > deadline) throw new Error(`no line matching ${pattern} within ${DEADLINE_MS} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
        child.once("exit", () => resolve());
      });
    }
  };
  return { stdout, stderr, line, exited, signal: (name) => child.kill(name) };
}

/** The exit code, or a failure if the process outlives the deadline. */
async function exitWithin(server: ServerProcess, ms: number): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the server did not exit within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([server.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

function assertOneLineError(t: Test, server: ServerProcess, message: string | RegExp): void {
  t.match(server.stderr[0], message, `stderr says why: "${server.stderr[0]}"`);
  t.equal(server.stderr.length, 1, "in one line, with no stack trace");
}

function register(client: SignalingServiceClient, room: string, peerId: string): Promise<RegisterResponse> {
  return new Promise((resolve, reject) =>
    client.register({ room, peerId, client: undefined }, new Metadata(), { deadline: Date.now() + DEADLINE_MS }, (err, res) =>
      err ? reject(err) : resolve(res),
    ),
  );
}

async function freeTcpPortInUse(t: Teardown): Promise<number> {
  const blocker = net.createServer();
  blocker.listen(0, "127.0.0.1");
  await once(blocker, "listening");
  t.teardown(() => new Promise((resolve) => blocker.close(resolve)));
  return (blocker.address() as net.AddressInfo).port;
}

// ---------------------------------------------------------------------------------------------

t.test("no serving mode: exit 2 with the three commands that would work for the port given", async (t) => {
  const server = startProcess(t, ["-port", "443"]);
  t.equal(await exitWithin(server, DEADLINE_MS), 2, "exit code 2");
  t.equal(server.stderr[0], "ice-test server: Choose how to serve on port 443, one of:", "the first line says what is missing, for that port");
  t.match(server.stderr[1], /^  ice-test server -port 443 --tls-cert cert\.pem --tls-key key\.pem +# TLS/, "the TLS command, with what was typed");
  t.match(server.stderr[2], /^  ice-test server -port 443 --self-signed --cert-out ca\.pem +# TLS for tests/, "the self-signed command");
  t.match(server.stderr[3], /^  ice-test server -port 443 --insecure +# plaintext; peers use http:\/\//, "the plaintext command the old tool's peers need");
  t.equal(server.stderr[4], "Run ice-test server --help for the options.", "and points at --help");
});

t.test("--insecure on port 0 prints its ports, serves, and exits 0 promptly on SIGTERM with a stream open", async (t) => {
  const server = startProcess(t, ["--host", "127.0.0.1", "--port", "0", "--stun-port", "0", "--insecure"]);
  const [, host, port, mode, stunPort] = await server.line(LISTENING);
  t.equal(host, "127.0.0.1", "the startup line names the host");
  t.equal(mode, "insecure", "and the mode");
  t.ok(Number(port) > 0 && Number(stunPort) > 0, `and the real ports (grpc ${port}, stun ${stunPort})`);

  const client = new SignalingServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  t.teardown(() => client.close());
  const alice = await register(client, "lab", "alice");
  t.equal(alice.iceServers[0]?.urls[0], `stun:127.0.0.1:${stunPort}`, "Register offers the server's STUN port");
  const stream = client.subscribe({ sessionToken: alice.sessionToken });
  t.teardown(() => stream.cancel());
  const ended = new Promise<ServiceError>((resolve) => stream.on("error", resolve));
  await once(stream, "data") as [SubscribeResponse];
  await server.line(/ subscribe room=lab peer=alice /);

  const started = Date.now();
  server.signal("SIGTERM");
  t.equal(await exitWithin(server, 3_000), 0, "SIGTERM exits 0");
  t.ok(Date.now() - started < 3_000, `promptly (${Date.now() - started} ms)`);
  const end = await ended;
  t.equal(end.code, status.UNAVAILABLE, "the open stream ended UNAVAILABLE");
  t.equal(end.details, "Server is shutting down", "saying why");
  t.match(server.stdout.join("\n"), /stopping signal=SIGTERM[\s\S]*unsubscribe room=lab peer=alice reason=shutdown[\s\S]*stopped/, "the log tells the story");
});

t.test("a gRPC port in use: one line naming the port, exit 1", async (t) => {
  const busy = await freeTcpPortInUse(t);
  const server = startProcess(t, ["--host", "127.0.0.1", "--port", String(busy), "--no-stun", "--insecure"]);
  t.equal(await exitWithin(server, DEADLINE_MS), 1, "exit code 1");
  assertOneLineError(t, server, `ice-test server: Cannot listen on port ${busy}: port ${busy} is already in use on 127.0.0.1 (stop the other server, or try another --port)`);
});

t.test("a STUN port in use: one line naming the UDP port, exit 1", async (t) => {
  const blocker = dgram.createSocket("udp4");
  t.teardown(() => blocker.close());
  blocker.bind(0, "127.0.0.1");
  await once(blocker, "listening");
  const busy = blocker.address().port;
  const server = startProcess(t, ["--host", "127.0.0.1", "--port", "0", "--stun-port", String(busy), "--insecure"]);
  t.equal(await exitWithin(server, DEADLINE_MS), 1, "exit code 1");
  assertOneLineError(t, server, `ice-test server: Cannot listen on UDP port ${busy}: port ${busy} is already in use on 127.0.0.1 (another STUN or TURN server? try another --stun-port, or --no-stun)`);
});

const unprivilegedPortStart = Number(await readFile("/proc/sys/net/ipv4/ip_unprivileged_port_start", "utf8").catch(() => "1024"));

t.test("port 443 without privileges: one line saying what to do, exit 1", { skip: unprivilegedPortStart <= 443 && "this machine lets anyone bind port 443" }, async (t) => {
  // As root, run the server as nobody: the real EACCES, not a simulation.
  const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : undefined;
  const server = startProcess(t, ["--host", "127.0.0.1", "--port", "443", "--no-stun", "--insecure"], asNobody);
  t.equal(await exitWithin(server, DEADLINE_MS), 1, "exit code 1");
  assertOneLineError(t, server, "ice-test server: Cannot listen on port 443: ports below 1024 need root or CAP_NET_BIND_SERVICE (try --port 8443)");
});

t.test("--self-signed --cert-out writes a certificate that clients can trust", async (t) => {
  const dir = t.testdir({});
  const server = startProcess(t, ["--host", "127.0.0.1", "--port", "0", "--no-stun", "--self-signed", "--cert-out", `${dir}/cert.pem`, "--tls-host", "signal.test"]);
  const [, , port, mode] = await server.line(LISTENING);
  t.equal(mode, "tls, self-signed", "the startup line says self-signed TLS");
  const pem = await readFile(`${dir}/cert.pem`, "utf8");
  const names = new X509Certificate(pem).subjectAltName ?? "";
  for (const name of ["DNS:localhost", "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1", "DNS:signal.test"]) {
    t.match(names, name, `the certificate covers ${name}`);
  }
  const client = new SignalingServiceClient(`127.0.0.1:${port}`, credentials.createSsl(Buffer.from(pem)), {
    "grpc.ssl_target_name_override": "localhost",
  });
  t.teardown(() => client.close());
  t.equal((await register(client, "lab", "alice")).peerId, "alice", "a client trusting the written certificate is served");
  server.signal("SIGINT");
  t.equal(await exitWithin(server, 3_000), 0, "SIGINT exits 0");
});

t.test("unreadable TLS files: exit 1 naming the file", async (t) => {
  const server = startProcess(t, ["--port", "0", "--no-stun", "--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"]);
  t.equal(await exitWithin(server, DEADLINE_MS), 1, "exit code 1");
  assertOneLineError(t, server, /^ice-test server: Cannot read TLS certificate file "\/nonexistent\/cert\.pem": ENOENT/);
});

t.test("TLS files: a key that does not match the certificate is refused", async (t) => {
  const [one, other] = await Promise.all([selfSignedTls(), selfSignedTls()]);
  const dir = t.testdir({ "cert.pem": one.cert, "key.pem": other.key, "good-key.pem": one.key, "junk.pem": "not a certificate" });
  await t.rejects(loadTlsFiles(`${dir}/cert.pem`, `${dir}/key.pem`), { message: `TLS private key "${dir}/key.pem" does not match the certificate "${dir}/cert.pem"` }, "a mismatched pair is refused");
  await t.rejects(loadTlsFiles(`${dir}/junk.pem`, `${dir}/key.pem`), { message: /is not PEM/ }, "a file that is not PEM is refused");
  const loaded = await loadTlsFiles(`${dir}/cert.pem`, `${dir}/good-key.pem`);
  t.equal(loaded.cert, one.cert, "a matching pair loads");
});

t.test("listen errors read the same whatever the transport reported", async (t) => {
  const eacces = toListenError(Object.assign(new Error("listen EACCES: permission denied 0.0.0.0:443"), { code: "EACCES" }), "tcp", "0.0.0.0", 443);
  t.equal(eacces.message + cliHint(eacces), "Cannot listen on port 443: ports below 1024 need root or CAP_NET_BIND_SERVICE (try --port 8443)", "EACCES below 1024");
  const fromGrpc = toListenError(new Error("No address added out of total 1 resolved errors: [listen EADDRINUSE: address already in use 0.0.0.0:8443]"), "tcp", "0.0.0.0", 8443);
  t.equal(fromGrpc.code, "EADDRINUSE", "the code is recovered from grpc-js's message");
  t.equal(fromGrpc.message, "Cannot listen on port 8443: port 8443 is already in use on 0.0.0.0", "EADDRINUSE");
});

// ---------------------------------------------------------------------------------------------
// Flag and environment parsing, in-process.

function parse(argv: string[], env: Record<string, string> = {}): ServerCliOptions {
  const command = parseServerCommand(argv, (name) => env[name]);
  if (command.kind !== "run") throw new Error("expected a run command");
  return command.options;
}

function usage(argv: string[], env: Record<string, string> = {}): string {
  try {
    parseServerCommand(argv, (name) => env[name]);
  } catch (err) {
    if (err instanceof UsageError) return err.message;
    throw err;
  }
  throw new Error(`expected a usage error for ${argv.join(" ")}`);
}

t.test("flags: defaults, modes and values", async (t) => {
  t.same(parse(["--insecure"]), {
    host: "0.0.0.0",
    port: 443,
    tls: { kind: "insecure" },
    stunPort: 3478,
    publicHost: undefined,
    turn: undefined,
    sessionGraceMs: undefined,
    maxQueue: undefined,
    limits: {},
    auth: undefined,
    redis: undefined,
    ops: { tlsClientCa: undefined, metricsPort: undefined, metricsHost: "127.0.0.1", logFormat: undefined, logLevel: "info", shutdownGraceMs: 5000 },
  }, "the defaults");
  t.same(parse(["--tls-cert", "c.pem", "--tls-key", "k.pem"]).tls, { kind: "files", certFile: "c.pem", keyFile: "k.pem" }, "TLS from files");
  t.same(parse(["--self-signed", "--tls-host", "a.test", "--tls-host", "10.0.0.1", "--cert-out", "ca.pem"]).tls, { kind: "self-signed", hosts: ["a.test", "10.0.0.1"], certOut: "ca.pem" }, "self-signed with extra names");
  t.equal(parse(["--insecure", "--no-stun"]).stunPort, null, "--no-stun disables STUN");
  t.equal(parse(["--insecure", "--stun-port", "0"]).stunPort, 0, "--stun-port 0 means a free port");
  t.equal(parse(["--insecure", "--host", "[::]"]).host, "::", "an IPv6 host may come in brackets");
  t.equal(parse(["--insecure", "--session-grace", "2.5"]).sessionGraceMs, 2500, "--session-grace is in seconds");
  t.equal(parse(["--insecure", "--max-queue", "10"]).maxQueue, 10, "--max-queue");
  t.same(parseServerCommand(["--help"], () => undefined), { kind: "help" }, "--help");
});

t.test("flags: TURN configuration", async (t) => {
  t.same(parse(["--insecure", "--turn", "turn:a:3478", "--turn", "turns:a:5349", "--turn-secret", "s"]).turn, { urls: ["turn:a:3478", "turns:a:5349"], secret: "s" }, "repeated --turn with a secret");
  t.same(parse(["--insecure", "--turn", "turn:a", "--turn-user", "u"], { TURN_PASSWORD: "p" }).turn, { urls: ["turn:a"], user: "u", password: "p" }, "the password from TURN_PASSWORD");
  t.same(parse(["--insecure", "--turn", "turn:a"], { TURN_SECRET: "s" }).turn, { urls: ["turn:a"], secret: "s" }, "the secret from TURN_SECRET");
  t.equal(parse(["--insecure"], { TURN_SECRET: "s" }).turn, undefined, "a TURN_SECRET meant for other tools is ignored without --turn");
  t.match(usage(["--insecure", "--turn", "turn:a"]), /^--turn needs credentials: --turn-secret S/, "TURN without credentials");
  t.match(usage(["--insecure", "--turn", "stun:a"]), /^Invalid --turn "stun:a": a TURN URL looks like turn:/, "a URL that is not TURN");
  t.match(usage(["--insecure", "--turn-secret", "s"]), "--turn-secret needs --turn URL", "credentials without --turn");
  t.match(usage(["--insecure", "--turn", "turn:a", "--turn-secret", "s", "--turn-user", "u"]), /^Choose --turn-secret or --turn-user/, "both kinds of credentials");
  t.match(usage(["--insecure", "--turn", "turn:a", "--turn-user", "u"]), /^--turn-user and --turn-password go together/, "a user without a password");
});

t.test("environment: every flag as ICE_TEST_*, the command line wins", async (t) => {
  const env = { ICE_TEST_INSECURE: "1", ICE_TEST_PORT: "8443", ICE_TEST_STUN_PORT: "0", ICE_TEST_TURN: "turn:a, turn:b", ICE_TEST_TURN_SECRET: "s", ICE_TEST_PUBLIC_HOST: "signal.example.org" };
  const options = parse([], env);
  t.equal(options.port, 8443, "ICE_TEST_PORT");
  t.equal(options.stunPort, 0, "ICE_TEST_STUN_PORT");
  t.equal(options.tls.kind, "insecure", "ICE_TEST_INSECURE=1");
  t.same(options.turn?.urls, ["turn:a", "turn:b"], "ICE_TEST_TURN is a comma-separated list");
  t.equal(options.publicHost, "signal.example.org", "ICE_TEST_PUBLIC_HOST");
  t.equal(parse(["--port", "9000"], env).port, 9000, "a flag beats the environment");
  t.equal(parse(["--no-stun"], { ICE_TEST_INSECURE: "true" }).stunPort, null, "boolean flags and env combine");
  t.equal(parse([], { ICE_TEST_INSECURE: "1", ICE_TEST_NO_STUN: "yes" }).stunPort, null, "ICE_TEST_NO_STUN=yes");
  t.equal(usage([], { ICE_TEST_INSECURE: "maybe" }), 'Invalid ICE_TEST_INSECURE "maybe": use 1 or 0 (true or false)', "a bad boolean names the variable");
  t.equal(usage([], { ICE_TEST_INSECURE: "1", ICE_TEST_PORT: "http" }), 'Invalid ICE_TEST_PORT "http": use a port number from 0 to 65535', "a bad value names the variable it came from");
});

t.test("flags: usage errors say what is wrong", async (t) => {
  t.equal(usage([]), "Choose how to serve on port 443, one of:", "no mode");
  t.match(usage(["--insecure", "--self-signed"]), /^Choose one way to serve, not --self-signed and --insecure/, "two modes");
  t.match(usage(["--tls-cert", "c.pem"]), /^--tls-cert and --tls-key go together/, "a certificate without a key");
  t.equal(usage(["--insecure", "--cert-out", "x.pem"]), "--cert-out only goes with --self-signed", "--cert-out without --self-signed");
  t.equal(usage(["--insecure", "--port", "70000"]), 'Invalid --port "70000": use a port number from 0 to 65535', "a port out of range");
  t.equal(usage(["--insecure", "--port", "-1"]), 'Invalid --port "-1": use a port number from 0 to 65535', "a negative port");
  t.equal(usage(["--insecure", "--no-stun", "--stun-port", "3478"]), "--no-stun contradicts --stun-port: choose one", "--no-stun with --stun-port");
  t.match(usage(["--insecure", "--session-grace", "0"]), /^Invalid --session-grace "0": use a number of seconds greater than 0/, "a zero grace");
  t.match(usage(["--insecure", "--max-queue", "1.5"]), /^Invalid --max-queue "1.5"/, "a fractional queue size");
  t.match(usage(["--insecure", "--public-host", "http://x"]), /^Invalid --public-host "http:\/\/x": use a host name or an IP address/, "a URL as a host");
  t.match(usage(["--insecure", "--bogus"]), /^Unknown flag --bogus/, "an unknown flag");
  t.match(usage(["--insecure", "extra"]), /^Unexpected argument "extra"/, "a stray argument");
});
