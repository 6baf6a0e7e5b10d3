// Ctrl-C as a person presses it, on spawned peers: after the channel opened the summary says
// connected YES, interrupted, with the round trips so far (exit 130); with stdout's reader gone
// (`peer | tee`, Ctrl-C kills both) neither runtime prints a stack trace.
import t from "tap";
import type { PeerProcess, PeerRuntime } from "../scripts/peer-process.ts";
import { loopbackFlags, resultOf, spawnPeer, uniqueRoom } from "./fixtures/peers.ts";
import { startTestServer } from "./fixtures/server.ts";

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** Resolves with the first output line (stdout or stderr) matching `pattern`. */
function lineMatching(peer: PeerProcess, pattern: RegExp, limitMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const found = [...peer.lines, ...peer.stderr].find((line) => pattern.test(line));
    if (found) return resolve(found);
    const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${limitMs} ms`)), limitMs);
    const check = (chunk: Buffer) => {
      if (!pattern.test(chunk.toString())) return;
      // The line itself is collected by the peer's reader; take it from there once it is in.
      setImmediate(() => {
        const line = [...peer.lines, ...peer.stderr].find((text) => pattern.test(text));
        if (!line) return;
        clearTimeout(timer);
        peer.child.stdout?.off("data", check);
        resolve(line);
      });
    };
    peer.child.stdout?.on("data", check);
    peer.child.exitCode === null && peer.child.once("exit", () => setImmediate(() => reject(new Error(`exited before a line matching ${pattern}`))));
  });
}

const server = await startTestServer(t);

async function spawnKilledAtEnd(runtime: PeerRuntime, args: string[]): Promise<PeerProcess> {
  const peer = await spawnPeer(runtime, args);
  t.teardown(() => void peer.child.kill("SIGKILL"));
  return peer;
}

/** Two peers exchanging 10000 pings; Ctrl-C on the offerer after its first round trip. */
async function interruptMidExchange() {
  const flags = loopbackFlags(`http://${server.address}`, uniqueRoom(), ["--messages", "10000", "--timeout", "5m"]);
  await spawnKilledAtEnd("node", ["--role", "answerer", ...flags]);
  const offerer = await spawnKilledAtEnd("node", ["--role", "offerer", ...flags]);
  await lineMatching(offerer, /"event":"round-trip"/);
  offerer.child.kill("SIGINT");
  return resultOf(offerer, await offerer.exited);
}

/** A waiting peer whose stdout reader dies, then Ctrl-C: it writes its summary into a closed pipe. */
async function interruptWithClosedPipe(runtime: PeerRuntime) {
  const peer = await spawnKilledAtEnd(runtime, ["--role", "answerer", "--signaling-addr", `http://${server.address}`, "--room", uniqueRoom(), "--bind", "127.0.0.1"]);
  await lineMatching(peer, / subscribed; /);
  peer.child.stdout!.destroy();
  peer.child.kill("SIGINT");
  return { code: await peer.exited, stderr: peer.stderr };
}

// Side by side: spawning is the slow part.
const runs = { exchange: interruptMidExchange(), node: interruptWithClosedPipe("node"), deno: interruptWithClosedPipe("deno") };
// A failure is reported by the test that awaits it, not as an unhandled rejection before then.
Object.values(runs).forEach((run) => run.catch(() => undefined));

t.test("Ctrl-C after the channel opened: connected YES, interrupted, round trips so far, exit 130; JSON has wall-clock time", async (t) => {
  const result = await runs.exchange;
  t.equal(result.code, 130, "exit code 130, as for any interrupted program");
  t.equal(result.summary?.connected, true, "connected: the channel was open");
  t.equal(result.summary?.interrupted, true, "interrupted");
  t.ok((result.summary?.rttMs?.count ?? 0) > 0, `round trips so far: ${result.summary?.rttMs?.count}`);
  t.match(result.summary?.error?.message, /^Interrupted after the data channel opened, with \d+ round trips? done$/, "the message says how far it got");
  t.ok(result.events.every((event) => ISO.test(String(event["time"]))), "every JSON event carries an ISO 8601 time");
  t.ok(result.events.every((event) => typeof event.t === "number"), "and elapsed ms");
  t.notMatch(result.stderr.join("\n"), /^\s+at /m, "no stack trace");
});

for (const runtime of ["node", "deno"] as const) {
  t.test(`${runtime}: Ctrl-C with stdout's reader gone ends without a stack trace`, async (t) => {
    const { code, stderr } = await runs[runtime];
    t.equal(code, 130, "exit code 130");
    t.notMatch(stderr.join("\n"), /BrokenPipe|EPIPE|Broken pipe|^\s+at /m, `nothing on stderr about the pipe: ${stderr.join(" | ")}`);
  });
}
