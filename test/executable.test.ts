// What a deployment does: copy dist/ice-test to a machine with no Node and no node_modules, run a
// server and two peers from it. Here: an empty directory and a PATH without node.
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import t, { type Test } from "tap";
import { DIST, ensureBuilt, executableUnbuildable } from "../scripts/dist.ts";
import { loopbackFlags, watchProcess, type PeerProcess } from "../scripts/peer-process.ts";
import { check, healthClient, reflect } from "./fixtures/grpc-tools.ts";
import { resultOf, uniqueRoom } from "./fixtures/peers.ts";
import { startTestServer } from "./fixtures/server.ts";
import { untapped } from "./fixtures/untapped.ts";

const DEADLINE_MS = 30_000;
const SIGNALING = "icetest.signaling.v1.SignalingService";
const HEALTH = "grpc.health.v1.Health";
const unbuildable = executableUnbuildable();
// The first run builds dist/ (about 10 s on an idle machine, far more on a busy one).
t.setTimeout(300_000);

t.test("dist/ice-test serves and peers from an empty directory with no node on PATH", { skip: unbuildable }, async (t) => {
  await ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), "ice-test-exe-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const exe = join(dir, "ice-test");
  copyFileSync(DIST.executable, exe);
  const env = { PATH: dir, HOME: dir, NO_COLOR: "1" };
  t.notOk(env.PATH.split(delimiter).some((p) => existsSync(join(p, "node"))), "no node on the PATH the executable runs with");

  const run = (args: string[]): PeerProcess => {
    const [command, ...argv] = untapped(exe, ...args);
    const process_ = watchProcess(spawn(command!, argv, { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] }));
    t.teardown(() => void process_.child.kill("SIGKILL"));
    return process_;
  };

  const version = run(["--version"]);
  t.equal(await version.exited, 0, "--version exits 0");
  t.match(version.lines.join("\n"), /^ice-test \d+\.\d+\.\d+ \(node /, "--version names the program and its runtime");

  const server = run(["server", "-insecure", "-host", "127.0.0.1", "-port", "0", "-stun-port", "0"]);
  const port = await listeningPort(server);
  await servesLikeUnbundled(t, `127.0.0.1:${port}`);
  const flags = loopbackFlags(`http://127.0.0.1:${port}`, uniqueRoom("exe"), ["--messages", "1"]);
  const answerer = run(["peer", "--role", "answerer", ...flags]);
  const offerer = run(["peer", "--role", "offerer", ...flags]);
  const [a, o] = [resultOf(answerer, await answerer.exited), resultOf(offerer, await offerer.exited)];
  for (const [name, result] of [["offerer", o], ["answerer", a]] as const) {
    t.equal(result.code, 0, `the ${name} exits 0 (stderr: ${result.stderr.join(" | ")})`);
    t.equal(result.summary?.connected, true, `the ${name} reports connected`);
  }
  t.equal(o.summary?.remotePeerId, a.summary?.peerId, "the two peers met each other");

  server.child.kill("SIGTERM");
  t.equal(await server.exited, 0, "the server stops cleanly on SIGTERM");
  t.match(server.lines.join("\n"), /stopped/, "the server says it stopped");
});

function listeningPort(server: PeerProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not listen within ${DEADLINE_MS} ms: ${server.stderr.join(" | ")}`)), DEADLINE_MS);
    const check = () => {
      const match = server.lines.map((line) => /listening on \S+:(\d+)/.exec(line)).find(Boolean);
      if (!match) return;
      clearTimeout(timer);
      server.child.stdout!.off("data", check);
      resolve(Number(match[1]));
    };
    server.child.stdout!.on("data", () => setImmediate(check));
    void server.exited.then((code) => reject(new Error(`the server exited with ${code}: ${server.stderr.join(" | ")}`)));
  });
}

/**
 * Regression: bundled, the server died at start with "__dirname is not defined" (health and
 * reflection read .proto files beside their code). It must answer as the unbundled server does.
 */
async function servesLikeUnbundled(t: Test, address: string): Promise<void> {
  const view = await operatorView(address);
  t.same(view.health, { server: "SERVING", signaling: "SERVING" }, "grpc.health.v1 Check answers SERVING for the server and the signaling service");
  for (const version of ["v1", "v1alpha"] as const) {
    t.ok(view.reflection[version].services.includes(SIGNALING) && view.reflection[version].services.includes(HEALTH), `reflection ${version} lists the signaling and health services (${view.reflection[version].services.join(", ")})`);
    t.ok(view.reflection[version].signaling.length > 0, `reflection ${version} describes the signaling service`);
  }
  t.same(view, await (unbundled ??= startTestServer(t, { stunPort: null }).then((server) => operatorView(server.address))), "health and reflection (lists, and the signaling and health services' descriptors) answer exactly as the unbundled server's");
}

/** The unbundled server's answers, from a server in this process; started once. */
let unbundled: Promise<OperatorView> | undefined;

type OperatorView = Awaited<ReturnType<typeof operatorView>>;

/** What grpc_health_probe and grpcurl (list, describe) are told, as comparable values. */
async function operatorView(address: string) {
  const client = healthClient(address);
  try {
    const health = { server: await check(client, ""), signaling: await check(client, SIGNALING) };
    const reflection = { v1: await reflected(address, "v1"), v1alpha: await reflected(address, "v1alpha") };
    return { health, reflection };
  } finally {
    client.close();
  }
}

async function reflected(address: string, version: "v1" | "v1alpha") {
  const described = async (symbol: string) =>
    ((await reflect(address, version, { file_containing_symbol: symbol })).file_descriptor_response?.file_descriptor_proto ?? []).map((bytes) => Buffer.from(bytes).toString("base64"));
  const listed = await reflect(address, version, { list_services: "" });
  const services = (listed.list_services_response?.service ?? []).map((service) => service.name).sort();
  return { services, signaling: await described(SIGNALING), health: await described(HEALTH) };
}

t.test("dist/ice-test.mjs serves health and reflection with no node_modules beside it", { skip: unbuildable }, async (t) => {
  await ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), "ice-test-mjs-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(DIST.bundle, join(dir, "ice-test.mjs"));
  const [command, ...argv] = untapped(process.execPath, "ice-test.mjs", "server", "--insecure", "--host", "127.0.0.1", "--port", "0", "--stun-port", "0");
  const server = watchProcess(spawn(command!, argv, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] }));
  t.teardown(() => void server.child.kill("SIGKILL"));
  await servesLikeUnbundled(t, `127.0.0.1:${await listeningPort(server)}`);
  server.child.kill("SIGTERM");
  t.equal(await server.exited, 0, "the server stops cleanly on SIGTERM");
});

t.test("dist/ice-test.mjs runs on Node with no node_modules beside it", { skip: unbuildable }, async (t) => {
  await ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), "ice-test-mjs-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(DIST.bundle, join(dir, "ice-test.mjs"));
  const run = async (args: string[]) => {
    const [command, ...argv] = untapped(process.execPath, "ice-test.mjs", ...args);
    const child = watchProcess(spawn(command!, argv, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] }));
    t.teardown(() => void child.child.kill("SIGKILL"));
    return { code: await child.exited, out: child.lines.join("\n"), err: child.stderr.join("\n") };
  };
  const server = await run(["server", "--help"]);
  t.equal(server.code, 0, "ice-test server --help exits 0");
  t.match(server.out, /signaling server/, "the server's help is shown");
  const peer = await run(["peer", "--help"]);
  t.equal(peer.code, 0, "ice-test peer --help exits 0");
  t.match(peer.out, /--role/, "the peer's help is shown");
  const unknown = await run(["serve"]);
  t.equal(unknown.code, 2, "an unknown command exits 2");
  t.match(unknown.err, /unknown command "serve"[\s\S]*did you mean "server"/, "an unknown command gets a suggestion");
});
