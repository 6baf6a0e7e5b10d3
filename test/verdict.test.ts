// The joint verdict's rules, the NAT probe against the server's own STUN responder on its two
// ports, and the names of TURN certificate problems.
import { execFile } from "node:child_process";
import { createSocket } from "node:dgram";
import { promisify } from "node:util";
import t from "tap";
import { Message, classes, methods, parseMessage } from "werift";
import { NatFiltering, NatMapping, type EvidenceReport } from "../gen/icetest/signaling/v1/signaling.ts";
import { classifyFiltering, classifyMapping, natTargets, startNatProbe } from "../core/nat-probe.ts";
import { tlsProblem } from "../core/turn-probe.ts";
import { jointVerdict } from "../core/verdict.ts";
import { startStunResponder } from "../server/stun.ts";
import { ROOT, sourceCommand } from "../scripts/peer-process.ts";

function report(overrides: Partial<EvidenceReport>): EvidenceReport {
  return { connected: false, reason: "", message: "", phase: "ice", candidates: [{ type: "host", count: 1 }, { type: "srflx", count: 1 }], servers: [], pairs: [], ...overrides };
}

const symmetric = { mapping: NatMapping.NAT_MAPPING_ADDRESS_AND_PORT_DEPENDENT, filtering: NatFiltering.NAT_FILTERING_ADDRESS_AND_PORT_DEPENDENT, mappedAddress: "203.0.113.1:1000", serverAddresses: 2, detail: "" };
const portRestricted = { ...symmetric, mapping: NatMapping.NAT_MAPPING_ENDPOINT_INDEPENDENT };

t.test("a symmetric NAT against a port-restricted cone is named as the side that breaks hole punching", async (t) => {
  const alice = report({ nat: symmetric, reason: "nat-traversal-failed", message: "Both peers are behind NAT" });
  const bob = report({ nat: portRestricted, reason: "peer-left", message: "Peer alice left" });
  const verdict = jointVerdict({ name: "alice", report: alice }, { name: "bob", report: bob });
  t.equal(verdict.reason, "symmetric-nat", "the rule is the symmetric NAT");
  t.equal(verdict.decidedBy, "alice", "alice's evidence decided it");
  t.match(verdict.text, /^alice: NAT rewrites ports per destination \(address-and-port-dependent mapping\); bob: port-restricted cone NAT; alice's NAT breaks hole punching: a direct path is impossible: use TURN: --with-turn$/, "both NATs named, then the cause");
  t.match(verdict.otherSide, /^bob said: Peer alice left/, "the other side's own reason is shown");
});

t.test("a TURN server that worked is named in the advice", async (t) => {
  const alice = report({ nat: symmetric, reason: "nat-traversal-failed", servers: [{ url: "turns:turn.example.org:443", outcome: "allocated", detail: "198.51.100.2:50000" }] });
  const verdict = jointVerdict({ name: "alice", report: alice }, { name: "bob", report: report({ nat: symmetric }) });
  t.equal(verdict.decidedBy, "both", "both NATs are symmetric: both sides' evidence");
  t.match(verdict.text, /use TURN — turns:turn\.example\.org:443 worked/, "the TURN server that allocated is named");
});

t.test("two symmetric NATs are both named, as both sides' evidence", async (t) => {
  const verdict = jointVerdict({ name: "alice", report: report({ nat: symmetric }) }, { name: "bob", report: report({ nat: symmetric }) });
  t.equal(verdict.decidedBy, "both", "both sides' evidence decided it");
  t.match(verdict.text, /alice's and bob's NATs break hole punching: a direct path is impossible: use TURN: --with-turn$/, "both NATs named");
});

t.test("a symmetric NAT with no evidence from the other side: unlikely, not impossible, decided by this side", async (t) => {
  const verdict = jointVerdict({ name: "alice", report: report({ nat: symmetric, reason: "nat-traversal-failed" }) }, undefined);
  t.equal(verdict.decidedBy, "alice", "this side's evidence alone");
  t.match(verdict.text, /alice's NAT breaks hole punching: a direct path is unlikely \(the other peer's NAT unknown\)/, "the other NAT might let anything in");
});

t.test("a symmetric NAT facing an unmeasured NAT is called unlikely, not impossible", async (t) => {
  const verdict = jointVerdict({ name: "alice", report: report({ nat: symmetric }) }, { name: "bob", report: report({}) });
  t.match(verdict.text, /a direct path is unlikely \(bob's filtering unknown\)/, "no claim beyond the evidence");
});

t.test("an untrusted TURN certificate is named, with --turn-ca", async (t) => {
  const bob = report({ reason: "turn-tls-untrusted", servers: [{ url: "turns:t:443", outcome: "tls-untrusted", detail: "self-signed certificate" }] });
  const verdict = jointVerdict({ name: "alice", report: report({ reason: "peer-left" }) }, { name: "bob", report: bob });
  t.equal(verdict.reason, "turn-tls-untrusted", "the certificate problem decides");
  t.equal(verdict.decidedBy, "bob", "bob's evidence showed it");
  t.match(verdict.text, /bob's TURN server turns:t:443: its certificate is not trusted .*--turn-ca FILE/, "and says how to trust it");
});

t.test("neither side hearing the same STUN server blames the server, not both networks", async (t) => {
  const silent = { candidates: [{ type: "host", count: 1 }], servers: [{ url: "stun:s:3478", outcome: "no-answer", detail: "" }], reason: "udp-blocked" };
  const verdict = jointVerdict({ name: "alice", report: report(silent) }, { name: "bob", report: report(silent) });
  t.equal(verdict.reason, "stun-unreachable", "the STUN server is the common factor");
  t.equal(verdict.decidedBy, "both", "both sides' evidence decided it");
});

t.test("one side without a STUN answer where the other got one: UDP blocked on that side", async (t) => {
  const deaf = report({ candidates: [{ type: "host", count: 1 }], servers: [{ url: "stun:s:3478", outcome: "no-answer", detail: "" }], reason: "udp-blocked" });
  const heard = report({ servers: [{ url: "stun:s:3478", outcome: "answered", detail: "203.0.113.1:1" }], reason: "peer-unreachable" });
  const verdict = jointVerdict({ name: "alice", report: heard }, { name: "bob", report: deaf });
  t.equal(verdict.reason, "udp-blocked", "UDP blocked");
  t.equal(verdict.decidedBy, "bob", "on bob's side, by bob's evidence");
});

t.test("an old peer that sends no evidence: this side's verdict alone, said so", async (t) => {
  const verdict = jointVerdict({ name: "alice", report: report({ reason: "ice-timeout", message: "ICE checks did not succeed" }) }, undefined);
  t.equal(verdict.remoteReported, false, "no remote report");
  t.match(verdict.text, /ICE checks did not succeed \(the other peer sent no evidence/, "the verdict says the other side is unknown");
});

t.test("mapping: compared answers from two ports and a second address", async (t) => {
  const answered = (mapped: string) => ({ asked: "x", outcome: "answered" as const, mapped });
  t.equal(classifyMapping(undefined, undefined, undefined, 1), "unknown", "no answer: unknown");
  t.equal(classifyMapping("203.0.113.1:5", answered("203.0.113.1:5"), answered("203.0.113.1:5"), 1), "endpoint-independent", "the same mapping everywhere");
  t.equal(classifyMapping("203.0.113.1:5", answered("203.0.113.1:6"), answered("203.0.113.1:7"), 1), "address-and-port-dependent", "a new port per destination port");
  t.equal(classifyMapping("203.0.113.1:5", answered("203.0.113.1:5"), answered("203.0.113.1:9"), 1), "address-dependent", "a new port per destination address only");
  t.equal(classifyMapping("203.0.113.1:5", { asked: "x", outcome: "wrong-source", from: "y" }, undefined, 1), "unknown", "an answer from the wrong address is not used");
  t.equal(classifyFiltering({ asked: "x", outcome: "no-answer" }, answered("a")), "address-and-port-dependent", "the other port's answer did not get in");
  t.equal(classifyFiltering({ asked: "x", outcome: "no-answer" }, { asked: "x", outcome: "no-answer" }), "unknown", "silence from a port never heard proves nothing");
});

t.test("the second address asked is a TURN server over UDP: a TURN URL over TCP or TLS names no UDP port", async (t) => {
  const offered = [{ urls: ["stun:198.51.100.1:3478"] }, { urls: ["turn:198.51.100.2:3478"] }];
  t.same(natTargets("stun:198.51.100.1:3478", offered, "turn:198.51.100.3:3478")?.other, { host: "198.51.100.3", port: 3478 }, "the configured TURN server over UDP first");
  t.same(natTargets("stun:198.51.100.1:3478", offered, "turn:198.51.100.3:443?transport=tcp")?.other, { host: "198.51.100.2", port: 3478 }, "over TCP: the offered UDP one instead");
  t.same(natTargets("stun:198.51.100.1:3478", offered, "turns:198.51.100.3:443")?.other, { host: "198.51.100.2", port: 3478 }, "over TLS: the offered UDP one instead");
  t.equal(natTargets("stun:198.51.100.1:3478", [], "turn:198.51.100.3:443?transport=tcp")?.other, undefined, "none over UDP: no second address");
});

t.test("the NAT probe against the server's responder on two ports: no NAT on loopback, and the changed-port answer arrives", async (t) => {
  const responder = await startStunResponder({ host: "127.0.0.1", port: 0, altPort: 0 });
  t.teardown(() => responder.close());
  t.ok(responder.altPort, "the responder bound a second port");
  const targets = natTargets(`stun:127.0.0.1:${responder.port}`, [{ urls: [`stun:127.0.0.1:${responder.port}`, `stun:127.0.0.1:${responder.altPort}`] }]);
  t.equal(targets?.alternatePort, responder.altPort, "the second URL of the same entry is the alternate port");
  const result = await startNatProbe(targets!, 2000).finished;
  t.equal(result.complete, true, "every question was answered before the probe ended");
  t.equal(result.mapping, "no-nat", "loopback: the STUN server sees our own address");
  t.equal(result.filtering, "address-dependent-or-less", "the answer from the other port got in");
  t.ok(result.answers.every((a) => a.outcome === "answered"), "every answer came from the address asked");
});

t.test("a run that ends while the NAT probe still waits reports what is known and the rest as unknown, without waiting for the probe's timeout", { timeout: 20_000 }, async (t) => {
  const responder = await startStunResponder({ host: "127.0.0.1", port: 0 });
  t.teardown(() => responder.close());
  // A second "port" that never answers: the probe could only learn that from its 60 s timeout.
  const silent = createSocket("udp4");
  t.teardown(() => silent.close());
  await new Promise<void>((resolve) => silent.bind(0, "127.0.0.1", () => resolve()));
  const probe = startNatProbe({ primary: { host: "127.0.0.1", port: responder.port }, alternatePort: silent.address().port }, 60_000);
  const deadline = Date.now() + 10_000;
  while (probe.now().answers[0]?.outcome !== "answered" && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.equal(probe.now().answers[0]?.outcome, "answered", "the STUN server answered");
  probe.stop();
  const result = await probe.finished;
  t.equal(result.complete, false, "the result says the probe was incomplete");
  t.equal(result.mapping, "no-nat", "what is known is kept: on loopback the server saw our own address");
  t.equal(result.filtering, "unknown", "an unfinished filtering test is unknown, not port-restricted");
  t.equal(result.answers[1]?.outcome, "pending", "the unanswered question is reported as pending");
});

t.test("a NAT probe stopped while its retransmission is due in the same turn of timers ends quietly, on Node and on Deno", async (t) => {
  await Promise.all(
    (["node", "deno"] as const).map(async (runtime) => {
      const { command, args } = sourceCommand(runtime, "test/fixtures/nat-probe-stop.ts");
      const run = await promisify(execFile)(command, args, { cwd: ROOT, timeout: 30_000, env: { ...process.env, NO_COLOR: "1" } }).then(
        ({ stdout }) => ({ code: 0, stdout, stderr: "" }),
        (err: { code?: number; stdout?: string; stderr?: string }) => ({ code: err.code ?? -1, stdout: err.stdout ?? "", stderr: err.stderr ?? "" }),
      );
      t.equal(run.code, 0, `${runtime}: the probe's process exits 0 (${run.stderr.trim().split("\n")[0] ?? ""})`);
      t.match(run.stdout, /stopped cleanly/, `${runtime}: it ran to its end`);
    }),
  );
});

t.test("a CHANGE-REQUEST is answered from the other port when there is one, and refused with 420 otherwise", async (t) => {
  const withAlt = await startStunResponder({ host: "127.0.0.1", port: 0, altPort: 0 });
  const without = await startStunResponder({ host: "127.0.0.1", port: 0 });
  t.teardown(() => Promise.all([withAlt.close(), without.close()]));
  const socket = createSocket("udp4");
  t.teardown(() => socket.close());
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
  const askChanged = (port: number) =>
    new Promise<{ from: number; message: Message | undefined }>((resolve) => {
      const request = new Message(methods.BINDING, classes.REQUEST).setAttribute("CHANGE-REQUEST", 0x02).addFingerprint();
      socket.once("message", (data, from) => resolve({ from: from.port, message: parseMessage(data) }));
      socket.send(request.bytes, port, "127.0.0.1");
    });
  const changed = await askChanged(withAlt.port);
  t.equal(changed.from, withAlt.altPort, "the answer comes from the alternate port");
  t.equal(changed.message?.messageClass, classes.RESPONSE, "and is a success");
  const refused = await askChanged(without.port);
  t.equal(refused.message?.getAttributeValue("ERROR-CODE")?.[0], 420, "one port cannot honour it: 420");
});

t.test("TURN certificate problems are named from the TLS error", async (t) => {
  const err = (code: string, message: string) => Object.assign(new Error(message), { code });
  t.equal(tlsProblem(err("DEPTH_ZERO_SELF_SIGNED_CERT", "self-signed certificate")), "untrusted", "self-signed: untrusted");
  t.equal(tlsProblem(err("UNABLE_TO_VERIFY_LEAF_SIGNATURE", "unable to verify the first certificate")), "untrusted", "unknown CA: untrusted");
  t.equal(tlsProblem(err("CERT_HAS_EXPIRED", "certificate has expired")), "expired", "expired");
  t.equal(tlsProblem(err("ERR_TLS_CERT_ALTNAME_INVALID", "Hostname/IP does not match certificate's altnames")), "wrong-name", "wrong name");
  t.equal(tlsProblem(err("ECONNREFUSED", "connect ECONNREFUSED")), undefined, "not a certificate problem");
});
