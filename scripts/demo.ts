// `npm run demo`: the main job on one machine. Starts a signaling server with a self-signed TLS
// certificate on loopback, then a Node offerer and a Deno answerer in one room, and shows both
// reports as they happen. Exits 0 when both peers connected. Extra arguments go to both peers
// (e.g. `npm run demo -- --json --messages 10`). Nothing leaves loopback: the peers gather on
// 127.0.0.1 only and use the server's own STUN responder.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { ROOT, spawnPeer, type PeerRuntime } from "./peer-process.ts";

const SERVER_START_LIMIT_MS = 20_000;
const passThrough = process.argv.slice(2);
/** Every process the demo started: a signal to the demo goes on to them, so none is left behind. */
const children = new Set<ChildProcess>();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => children.forEach((child) => child.kill(signal)));
}

function print(label: string, line: string): void {
  process.stdout.write(`${label.padEnd(14)}│ ${line}\n`);
}

async function startServer(certFile: string): Promise<{ port: number; stop: () => Promise<void> }> {
  const args = ["--import", "tsx", "server/main.ts", "--self-signed", "--cert-out", certFile, "--host", "127.0.0.1", "--port", "0", "--stun-port", "0"];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  const exited = new Promise<number | null>((resolve) => child.once("close", resolve));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the server did not start within 20 s")), SERVER_START_LIMIT_MS);
    const onLine = (line: string) => {
      print("server", line);
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
  const certFile = join(dir, "server-cert.pem");
  const server = await startServer(certFile);
  try {
    const room = `demo-${process.pid}`;
    const common = ["--signaling-addr", `https://localhost:${server.port}`, "--ca", certFile, "--room", room, "--bind", "127.0.0.1", ...passThrough];
    const run = (role: string, runtime: PeerRuntime) => {
      const label = `${role}/${runtime}`;
      print(label, `starting: ice-test peer --role ${role} ${common.join(" ")}`);
      const peer = spawnPeer(runtime, ["--role", role, ...common], (line) => print(label, line));
      children.add(peer.child);
      return peer.exited.then((code) => ({ label, code }));
    };
    const results = await Promise.all([run("offerer", "node"), run("answerer", "deno")]);
    const failed = results.filter((r) => r.code !== 0);
    process.stdout.write("\n");
    if (failed.length === 0) {
      process.stdout.write("demo: both peers connected (Node offerer ↔ Deno answerer over loopback, TLS signaling)\n");
      return 0;
    }
    process.stdout.write(`demo: FAILED: ${failed.map((r) => `${r.label} exited with ${r.code}`).join(", ")}\n`);
    return 1;
  } finally {
    await server.stop();
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
