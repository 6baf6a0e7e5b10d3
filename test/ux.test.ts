// What a person sees around a run: progress while waiting, peers that are busy with each other,
// closed pipes, candidate lines, host hints. Ctrl-C and closed pipes in spawned peers: interrupt.test.ts.
import { once } from "node:events";
import { createServer as createTlsServer } from "node:tls";
import { Metadata } from "@grpc/grpc-js";
import t from "tap";
import { describeCandidateLine, parseCandidate, priorityParts } from "../core/candidates.ts";
import { noCandidateHints } from "../core/host-hints.ts";
import { isClosedPipe, tolerateClosedPipe } from "../core/pipe.ts";
import { ProgressReport } from "../core/progress.ts";
import { probeTurn } from "../core/turn-probe.ts";
import { selfSignedTls } from "../server/tls.ts";
import { loopbackFlags, spawnPeer, startSession, uniqueRoom } from "./fixtures/peers.ts";
import { connect, startTestServer } from "./fixtures/server.ts";

t.test("waiting, piped: a line every few seconds; peers that never call are said to be busy with others", async (t) => {
  const server = await startTestServer(t);
  const room = uniqueRoom();
  // alice is in the room and never calls anyone: as an offerer that already found its answerer.
  const client = connect(t, server);
  const alice = await new Promise<string>((resolve, reject) =>
    client.register({ room, peerId: "alice", client: undefined }, new Metadata(), (err, res) => (err ? reject(err) : resolve(res!.sessionToken))),
  );
  const stream = client.subscribe({ sessionToken: alice });
  stream.on("error", () => undefined);
  t.teardown(() => stream.cancel());

  const peer = await spawnPeer("node", ["--role", "answerer", "--signaling-addr", `http://${server.address}`, "--room", room, "--wait", "12s", "--bind", "127.0.0.1"]);
  t.teardown(() => peer.child.kill("SIGKILL"));
  const code = await peer.exited;
  const out = peer.lines.join("\n");
  t.match(out, new RegExp(`ms  waiting for a peer in room ${room}: 5 s, in the room: alice`), "a progress line after 5 s, naming who is there");
  t.match(out, new RegExp(`ms  alice has been in room ${room} for 10 s without calling this peer: it is most likely meeting another peer .*--room NAME on both sides`), "told that alice is busy, and what to do");
  t.equal(code, 4, "still exits 4 when --wait runs out");
  t.match(out, /reason +no-peer: /, "with reason no-peer");
});

t.test("waiting on a terminal: one live status line, replaced in place and cleared before other lines", async (t) => {
  const lines: string[] = [];
  const statuses: string[] = [];
  const report = new ProgressReport({ line: (l) => lines.push(l), status: (s) => statuses.push(s) }, false, "lab", "answerer", 20, 60_000);
  report.step("subscribed", "subscribed; 0 other peer(s) in the room", { peers: [] });
  await new Promise((resolve) => setTimeout(resolve, 100));
  report.step("peer-joined", "peer bob joined", { peerId: "bob" });
  await new Promise((resolve) => setTimeout(resolve, 100));
  report.step("peer-chosen", "meeting peer bob", { peerId: "bob" });
  const drawn = statuses.filter(Boolean);
  t.ok(drawn.length >= 2, `the status was redrawn (${drawn.length} times)`);
  t.match(drawn[0], /^  … waiting for a peer in room lab: 0 s, nobody else in the room$/, "room, time waited, who is there");
  t.match(drawn.at(-1), /in the room: bob; last: bob joined$/, "who joined");
  t.equal(statuses.at(-1), "", "cleared once the peer is found");
  t.notOk(lines.some((l) => /waiting for a peer/.test(l)), "no waiting lines among the output lines");
  report.stop();
});

t.test("closed pipes are recognised on both runtimes, and other errors still throw", async (t) => {
  t.ok(isClosedPipe(Object.assign(new Error("write EPIPE"), { code: "EPIPE" })), "Node's EPIPE");
  t.ok(isClosedPipe(Object.assign(new Error("Broken pipe (os error 32)"), { name: "BrokenPipe" })), "Deno's BrokenPipe");
  let calls = 0;
  const write = tolerateClosedPipe(() => {
    calls++;
    throw Object.assign(new Error("write EPIPE"), { code: "EPIPE" });
  });
  write("a");
  write("b");
  t.equal(calls, 1, "after the pipe closed, lines are dropped");
  t.throws(() => tolerateClosedPipe(() => { throw new Error("disk full"); })("x"), /disk full/, "other errors are not hidden");
});

t.test("two offerers: both sides get the hint", async (t) => {
  const server = await startTestServer(t);
  const flags = loopbackFlags(`http://${server.address}`, uniqueRoom(), ["--timeout", "20s"]);
  const one = startSession(["--role", "offerer", ...flags]);
  const two = startSession(["--role", "offerer", ...flags]);
  const summaries = await Promise.all([one.done, two.done]);
  for (const [i, summary] of summaries.entries()) {
    t.equal(summary.error?.reason, "two-offerers", `offerer ${i + 1}: reason two-offerers`);
    t.same(summary.error?.hints, ["Start one side with --role answerer"], `offerer ${i + 1}: the hint`);
    t.equal(summary.exitCode, 2, `offerer ${i + 1}: exit 2, a usage mistake`);
  }
});

t.test("candidate lines show the trickle-ICE page's fields", async (t) => {
  const info = parseCandidate("candidate:3928432910 1 udp 2130706431 192.168.1.20 54400 typ host")!;
  t.equal(describeCandidateLine(info), "host  component 1 foundation 3928432910 udp 192.168.1.20:54400 priority 126 | 65535 | 255", "component, foundation, protocol, address, port, priority parts");
  const srflx = parseCandidate("candidate:842163049 1 udp 1694498815 203.0.113.7 61000 typ srflx raddr 192.168.1.20 rport 54400")!;
  t.match(describeCandidateLine(srflx), /^srflx component 1 foundation 842163049 udp 203\.0\.113\.7:61000 via 192\.168\.1\.20:54400 priority 100 \| 65535 \| 255$/, "a server-reflexive candidate with its base");
  t.same(priorityParts(16777215), [0, 65535, 255], "a relay priority");
});

t.test("no candidates: the hint fits the host and the runtime", async (t) => {
  const loopbackOnly = () => ({ lo: [{ address: "127.0.0.1", internal: true }] }) as never;
  const withEth = () => ({ lo: [{ address: "127.0.0.1", internal: true }], eth0: [{ address: "192.0.2.2", internal: false }] }) as never;
  const denied = () => {
    throw new Error('Requires sys access to "networkInterfaces"');
  };
  t.same(noCandidateHints("node 20.20.2", loopbackOnly), ["This host has only loopback interfaces, which werift skips: add --bind 127.0.0.1 (on both peers, on this host)"], "loopback-only host: --bind 127.0.0.1");
  t.match(noCandidateHints("node 20.20.2", withEth)[0], /--bind with one of this host's addresses \(192\.0\.2\.2\)/, "other hosts: --bind a real address");
  t.match(noCandidateHints("deno 2.9.6", denied)[0], /--allow-sys=networkInterfaces/, "Deno without the permission: the permission");
  t.notMatch(noCandidateHints("node 20.20.2", loopbackOnly).join(" "), /allow-sys|Deno/, "Node is never told about Deno's permissions");
});

t.test("TURN over TLS to an IP address: no DEP0123 warning", async (t) => {
  const material = await selfSignedTls();
  const server = createTlsServer({ cert: material.cert, key: material.key }, (socket) => socket.end());
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.teardown(() => server.close());
  const warnings: string[] = [];
  const onWarning = (warning: Error & { code?: string }) => warnings.push(`${warning.code ?? ""} ${warning.message}`);
  process.on("warning", onWarning);
  t.teardown(() => process.off("warning", onWarning));
  const port = (server.address() as { port: number }).port;
  const result = await probeTurn({ url: `turns:127.0.0.1:${port}?transport=tcp`, transport: "tls", username: "u", password: "p" }, 2000);
  t.equal(result.outcome, "error", `the probe reports the untrusted certificate as an error (${"message" in result ? result.message : ""})`);
  await new Promise((resolve) => setImmediate(resolve));
  t.same(warnings.filter((w) => /DEP0123|servername/i.test(w)), [], "no warning about an IP servername");
});
