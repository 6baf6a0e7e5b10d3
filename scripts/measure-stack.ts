// Measurements of the WebRTC stack for the notes, run by hand (they take minutes, not test time):
//   npx tsx scripts/measure-stack.ts busy-loopback 50   # Deno offerer ↔ Node answerer over TLS, both CPUs spinning
//   npx tsx scripts/measure-stack.ts python 10          # the Python peer (aiortc) in both roles against Node
//   (DEBUG='werift-dtls*' also counts the Node side's DTLS flight retransmissions: a stall shows as one)
// The impaired-link measurement is IMPAIRED_LAB_RUNS=20 npx tap test/nat-lab-impaired.test.ts.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { startTestServer } from "../test/fixtures/server.ts";
import { loopbackFlags, ROOT, spawnPeer, type PeerProcess, type PeerRuntime } from "./peer-process.ts";

interface Summary {
  readonly connected: boolean;
  readonly timingsMs: Record<string, number>;
  readonly error?: { reason: string; message: string };
}

const teardowns: (() => unknown)[] = [];
const [mode, count] = [process.argv[2], Number(process.argv[3] ?? 10)];

function summaryOf(peer: PeerProcess): Summary | undefined {
  for (const line of peer.lines) {
    try {
      const value = JSON.parse(line) as Summary & { event?: string };
      if (value.event === "summary") return value;
    } catch {
      // not JSON: a human-readable line
    }
  }
  return undefined;
}

function python(args: readonly string[]): PeerProcess {
  const child = spawn("/usr/bin/python3", [join(ROOT, "examples/python/peer.py"), ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  createInterface({ input: child.stdout! }).on("line", (line) => lines.push(line));
  const exited = new Promise<number>((resolve) => child.once("close", (code) => resolve(code ?? 1)));
  return { child, lines, stderr: [], exited };
}

function spin(): ChildProcess {
  const child = spawn(process.execPath, ["-e", "for(;;){}"], { stdio: "ignore" });
  teardowns.push(() => child.kill("SIGKILL"));
  return child;
}

const room = () => `measure-${randomBytes(4).toString("hex")}`;

async function busyLoopback(runs: number): Promise<void> {
  const server = await startTestServer({ teardown: (fn) => teardowns.push(fn) }, { tls: true });
  const dir = mkdtempSync(join(tmpdir(), "measure-"));
  teardowns.push(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "ca.pem"), server.caPem!);
  spin();
  spin();
  let connected = 0;
  for (let run = 1; run <= runs; run++) {
    // Generous waits: with both CPUs spinning, starting a runtime can take longer than the default 20 s.
    const flags = loopbackFlags(`https://localhost:${server.port}`, room(), ["--ca", join(dir, "ca.pem"), "--wait", "120s", "--timeout", "60s"]);
    const peers = (["deno", "node"] as PeerRuntime[]).map((runtime, i) => spawnPeer(runtime, ["--role", i === 0 ? "offerer" : "answerer", ...flags]));
    await Promise.all(peers.map((p) => p.exited));
    const [o, a] = peers.map(summaryOf);
    const ok = o?.connected === true && a?.connected === true;
    if (ok) connected++;
    const why = [o, a].map((s) => (s?.connected ? "ok" : (s?.error?.reason ?? "no summary"))).join(" / ");
    // A failure is diagnosed from both peers' whole output: kept beside the run's number.
    const kept = ok ? "" : `; output in ${keepOutput(`busy-${run}`, peers)}`;
    console.log(`run ${run}: ${ok ? "connected" : "FAILED"} (${why}); ICE→channel ${span(o, "iceConnected", "channelOpen")} / ${span(a, "iceConnected", "channelOpen")} ms; load ${loadavg()[0]!.toFixed(2)}${kept}`);
  }
  console.log(`busy loopback (Deno offerer, Node answerer, TLS, two spin loops): ${connected} of ${runs} connected on both sides`);
}

async function pythonRuns(runs: number): Promise<void> {
  const server = await startTestServer({ teardown: (fn) => teardowns.push(fn) });
  const worst: number[] = [];
  for (let run = 1; run <= runs; run++) {
    const pythonRole = run % 2 ? "offerer" : "answerer";
    const flags = loopbackFlags(`http://${server.address}`, room());
    const py = python(["--role", pythonRole, ...flags]);
    const node = spawnPeer("node", ["--role", pythonRole === "offerer" ? "answerer" : "offerer", ...flags]);
    await Promise.all([py.exited, node.exited]);
    const [p, n] = [summaryOf(py), summaryOf(node)];
    // Each side's own ICE connected → DTLS connected (a stall on either side shows), and the
    // channel opening after it for context.
    const [nodeDtls, pyDtls] = [span(n, "iceConnected", "dtlsConnected"), span(p, "iceConnected", "dtlsConnected")];
    worst.push(Math.max(nodeDtls, pyDtls));
    const ok = p?.connected && n?.connected;
    console.log(
      `run ${run}: python ${pythonRole}: ${ok ? "connected" : `FAILED (${p?.error?.reason ?? "no summary"} / ${n?.error?.reason ?? "no summary"}; output in ${keepOutput(`python-${run}`, [py, node])})`}; ` +
        `ICE→DTLS node ${nodeDtls} ms, python ${pyDtls} ms; DTLS→channel node ${span(n, "dtlsConnected", "channelOpen")} ms, python ${span(p, "dtlsConnected", "channelOpen")} ms; ` +
        `node DTLS flights resent ${resent(node)}; load ${loadavg()[0]!.toFixed(2)}`,
    );
  }
  console.log(`python peer, ${runs} runs in both roles: largest ICE-connected → DTLS-connected ${Math.max(...worst)} ms (either side)`);
}

/** werift's DTLS flight retransmissions, counted from its debug log: "?" unless run with DEBUG=werift-dtls*. */
function resent(peer: PeerProcess): string {
  if (!/werift-dtls/.test(process.env.DEBUG ?? "")) return "?";
  return String(peer.stderr.filter((line) => /flight\.ts : warn .*retransmit/.test(line)).length);
}

function keepOutput(name: string, peers: readonly PeerProcess[]): string {
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  peers.forEach((p, i) => writeFileSync(join(dir, `peer-${i}.log`), [...p.lines, ...p.stderr].join("\n")));
  return dir;
}

function span(s: Summary | undefined, from: string, to: string): number {
  const [a, b] = [s?.timingsMs[from], s?.timingsMs[to]];
  return a === undefined || b === undefined ? Number.NaN : Math.round(b - a);
}

try {
  if (mode === "busy-loopback") await busyLoopback(count);
  else if (mode === "python") await pythonRuns(count);
  else console.error("usage: tsx scripts/measure-stack.ts busy-loopback|python [runs]");
} finally {
  for (const fn of teardowns.reverse()) await fn();
}
