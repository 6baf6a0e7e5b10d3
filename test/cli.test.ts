// The peer CLIs as users run them: separate processes, Node and Deno, across TLS and plaintext.
import t, { type Test } from "tap";
import { startTestServer } from "./fixtures/server.ts";
import { loopbackFlags, meetCli, runCli, uniqueRoom, type CliResult } from "./fixtures/peers.ts";
import type { PeerRuntime } from "../scripts/peer-process.ts";

const runtimes: [PeerRuntime, PeerRuntime][] = [["node", "deno"], ["deno", "node"]];

function assertSummary(t: Test, name: string, result: CliResult): void {
  t.equal(result.code, 0, `${name} exits 0 (stderr: ${result.stderr.join(" | ")})`);
  const s = result.summary;
  t.ok(s, `${name} printed a JSON summary`);
  if (!s) return;
  t.equal(s.connected, true, `${name} summary says connected`);
  t.match(s.selectedPair, { local: { type: "host", protocol: "udp", address: "127.0.0.1", port: Number }, remote: { address: "127.0.0.1", port: Number } }, `${name} selected pair has type, address, port and protocol`);
  // prflx: the other side's check can arrive before its candidate does over signaling.
  t.ok(["host", "prflx"].includes(s.selectedPair?.remote.type ?? ""), `${name} remote candidate is host or peer-reflexive (${s.selectedPair?.remote.type})`);
  t.match(s.rttMs, { min: Number, avg: Number, max: Number, count: 3 }, `${name} reports RTT min/avg/max over 3 pings`);
  t.match(s.timingsMs, { register: Number, offer: Number, answer: Number, iceConnected: Number, channelOpen: Number }, `${name} reports the timings`);
  t.ok(result.events.filter((e) => e.event === "local-candidate").length > 0, `${name} printed its local candidates`);
  t.ok(result.events.filter((e) => e.event === "remote-candidate").length > 0, `${name} printed the remote candidates`);
}

for (const tls of [false, true]) {
  for (const [offerer, answerer] of runtimes) {
    t.test(`${offerer} offerer meets ${answerer} answerer over ${tls ? "TLS" : "plaintext"}`, async (t) => {
      const server = await startTestServer(t, { tls });
      const caArgs = tls ? ["--ca", `${t.testdir({ "ca.pem": server.caPem! })}/ca.pem`] : [];
      const addr = tls ? `https://localhost:${server.port}` : `http://${server.address}`;
      const room = uniqueRoom();
      const { offerer: o, answerer: a } = await meetCli(t, { offerer, answerer }, loopbackFlags(addr, room, caArgs));
      assertSummary(t, `${offerer} offerer`, o);
      assertSummary(t, `${answerer} answerer`, a);
      t.equal(o.summary?.remotePeerId, a.summary?.peerId, "they met each other");
      t.match(o.summary?.runtime, new RegExp(`^${offerer} `), `the offerer ran on ${offerer}`);
      t.match(a.summary?.runtime, new RegExp(`^${answerer} `), `the answerer ran on ${answerer}`);
    });
  }
}

function assertNoStackTrace(t: Test, result: CliResult): void {
  t.notOk([...result.stderr, ...result.stdout].some((line) => /^\s+at .+[:(]\d+/.test(line)), "no stack trace printed");
}

t.test("a usage error exits 2 with a one-line reason", async (t) => {
  for (const runtime of ["node", "deno"] as const) {
    const result = await runCli(runtime, ["--role", "caller"], t.teardown);
    t.equal(result.code, 2, `${runtime}: exit code 2`);
    t.match(result.stderr[0], /^ice-test: --role must be offerer or answerer, not "caller"$/, `${runtime}: says what is wrong`);
    assertNoStackTrace(t, result);
  }
});

t.test("a signaling server that is not running exits 3 and says nothing listens there", async (t) => {
  const server = await startTestServer(t);
  const port = server.port;
  await server.shutdown();
  const result = await runCli("node", ["--role", "offerer", ...loopbackFlags(`http://127.0.0.1:${port}`, uniqueRoom())], t.teardown);
  t.equal(result.code, 3, "exit code 3");
  t.equal(result.summary?.error?.reason, "signaling-refused", "reason signaling-refused");
  t.match(result.stderr.join("\n"), new RegExp(`Nothing is listening at 127\\.0\\.0\\.1:${port}`), "the reason names the address");
  assertNoStackTrace(t, result);
});

t.test("an untrusted self-signed server exits 3 saying to pass --ca", async (t) => {
  const server = await startTestServer(t, { tls: true });
  const result = await runCli("deno", ["--role", "offerer", ...loopbackFlags(`https://localhost:${server.port}`, uniqueRoom())], t.teardown);
  t.equal(result.code, 3, "exit code 3");
  t.match(result.summary?.error?.message, /pass it with --ca FILE/, "the message says to pass --ca");
  assertNoStackTrace(t, result);
});

t.test("nobody joining within --wait exits 4 with reason no-peer", async (t) => {
  const server = await startTestServer(t);
  const room = uniqueRoom();
  const result = await runCli("node", ["--role", "offerer", ...loopbackFlags(`http://${server.address}`, room, ["--wait", "1s"])], t.teardown);
  t.equal(result.code, 4, "exit code 4");
  t.equal(result.summary?.connected, false, "summary says not connected");
  t.equal(result.summary?.error?.reason, "no-peer", "reason no-peer");
  t.match(result.summary?.error?.message, new RegExp(`No other peer joined room "${room}"`), "the message names the room");
});
