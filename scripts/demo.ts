// `npm run demo`: the main job on one machine. Starts a signaling server with a self-signed TLS
// certificate on loopback, then a Node offerer and a Deno answerer in one room, and shows both
// reports as they happen. Exits 0 when both peers connected. Extra arguments go to both peers
// (e.g. `npm run demo -- --json --messages 10`). Nothing leaves loopback: the peers gather on
// 127.0.0.1 only and use the server's own STUN responder. `--instances 2` starts a throwaway
// Redis and two server instances sharing it: the offerer talks to one, the answerer to the other.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { startDemoRedis } from "./demo-redis.ts";
import { ROOT, spawnPeer, type PeerRuntime } from "./peer-process.ts";

const SERVER_START_LIMIT_MS = 20_000;
const { instances, passThrough } = splitInstances(process.argv.slice(2));
/** Every process the demo started: a signal to the demo goes on to them, so none is left behind. */
const children = new Set<ChildProcess>();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => children.forEach((child) => child.kill(signal)));
}

/** `--instances N` (1 or 2) is the demo's own; everything else goes to the peers. */
function splitInstances(argv: string[]): { instances: number; passThrough: string[] } {
  const at = argv.findIndex((arg) => arg === "--instances" || arg.startsWith("--instances="));
  if (at < 0) return { instances: 1, passThrough: argv };
  const inline = argv[at]!.split("=")[1];
  const value = inline ?? argv[at + 1];
  if (value !== "1" && value !== "2") throw new Error(`--instances takes 1 or 2, not "${value ?? ""}"`);
  return { instances: Number(value), passThrough: [...argv.slice(0, at), ...argv.slice(at + (inline ? 1 : 2))] };
}

function print(label: string, line: string): void {
  process.stdout.write(`${label.padEnd(14)}│ ${line}\n`);
}

async function startServer(certFile: string, label = "server", extra: string[] = []): Promise<{ port: number; stop: () => Promise<void> }> {
  const args = ["--import", "tsx", "server/main.ts", "--self-signed", "--cert-out", certFile, "--host", "127.0.0.1", "--port", "0", "--stun-port", "0", "--log-format", "text", ...extra];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  const exited = new Promise<number | null>((resolve) => child.once("close", resolve));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the server did not start within 20 s")), SERVER_START_LIMIT_MS);
    const onLine = (line: string) => {
      print(label, line);
      const match = /listening on \S+:(\d+)/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    createInterface({ input: child.stdout }).on("line", onLine);
    createInterface({ input: child.stderr }).on("line", onLine);
    void exited.then((code) => reject(new Error(`the server exited with code ${code} before listening`)));
  });
  return {
    port,
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "ice-test-demo-"));
  const stops: (() => Promise<void>)[] = [];
  try {
    const redis = instances === 2 ? await startDemoRedis(dir) : undefined;
    if (redis) {
      stops.push(redis.stop);
      print("redis", `redis-server on ${redis.url}`);
    }
    // One server, or two sharing Redis: the offerer uses the first, the answerer the last.
    const servers: { port: number; certFile: string }[] = [];
    for (let i = 1; i <= instances; i++) {
      const certFile = join(dir, `server-${i}-cert.pem`);
      const label = instances === 1 ? "server" : `server ${i}`;
      const server = await startServer(certFile, label, redis ? ["--redis", redis.url] : []);
      stops.unshift(server.stop);
      servers.push({ port: server.port, certFile });
    }
    const room = `demo-${process.pid}`;
    const run = (role: string, runtime: PeerRuntime, server: { port: number; certFile: string }) => {
      const label = `${role}/${runtime}`;
      const common = ["--signaling-addr", `https://localhost:${server.port}`, "--ca", server.certFile, "--room", room, "--bind", "127.0.0.1", ...passThrough];
      print(label, `starting: ice-test peer --role ${role} ${common.join(" ")}`);
      const peer = spawnPeer(runtime, ["--role", role, ...common], (line) => print(label, line));
      children.add(peer.child);
      return peer.exited.then((code) => ({ label, code }));
    };
    const results = await Promise.all([run("offerer", "node", servers[0]!), run("answerer", "deno", servers[servers.length - 1]!)]);
    const failed = results.filter((r) => r.code !== 0);
    process.stdout.write("\n");
    if (failed.length === 0) {
      const across = instances === 2 ? ", each on its own server instance, meeting through Redis" : "";
      process.stdout.write(`demo: both peers connected (Node offerer ↔ Deno answerer over loopback, TLS signaling${across})\n`);
      return 0;
    }
    process.stdout.write(`demo: FAILED: ${failed.map((r) => `${r.label} exited with ${r.code}`).join(", ")}\n`);
    return 1;
  } finally {
    for (const stop of stops) await stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
