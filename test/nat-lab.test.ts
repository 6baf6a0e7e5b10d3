// The peer CLIs across real NATs (network namespaces, iptables, coturn): they connect where hole
// punching can work, fail where it cannot, and say why; TURN rescues the cases it should.
import t, { type Test } from "tap";
import type { PeerRuntime } from "../scripts/peer-process.ts";
import { natLabUnavailable, restCredentials, startNatLab, type NatLab } from "./fixtures/nat-lab.ts";
import { uniqueRoom, type CliResult } from "./fixtures/peers.ts";

const unavailable = natLabUnavailable();
if (unavailable) t.plan(0, unavailable);

interface Side {
  readonly site: string;
  readonly runtime?: PeerRuntime;
}

/** An offerer and an answerer in their sites' LANs, started together, both run to their end. */
async function meet(lab: NatLab, offerer: Side, answerer: Side, flags: readonly string[] = []) {
  const common = ["--signaling-addr", lab.signalingAddr, "--room", uniqueRoom("nat"), "--json", "--messages", "2", "--timeout", "60s", "--wait", "40s", ...flags];
  const run = (role: string, side: Side) => lab.runPeer(lab.lan(side.site), side.runtime ?? "node", ["--role", role, ...common]);
  const [o, a] = await Promise.all([run("offerer", offerer), run("answerer", answerer)]);
  return { offerer: o, answerer: a };
}

/** What a peer saw, for assertion messages and for the report when a diagnosis is wrong. */
function seen(result: CliResult): string {
  const s = result.summary;
  if (!s) return `no summary (exit ${result.code}); stderr: ${result.stderr.slice(-5).join(" | ")}`;
  const list = (cs: readonly { type: string; protocol: string; address: string; port: number }[]) =>
    cs.map((c) => `${c.type} ${c.protocol} ${c.address}:${c.port}`).join(", ") || "none";
  const pair = s.selectedPair ? `${s.selectedPair.local.type}→${s.selectedPair.remote.type}` : "no pair";
  return `exit ${s.exitCode}, ${s.error ? `${s.error.reason}: ${s.error.message}` : "connected"}; ${pair}; local [${list(s.candidates.local)}]; remote [${list(s.candidates.remote)}]`;
}

function eachPeer(peers: { offerer: CliResult; answerer: CliResult }, fn: (name: string, result: CliResult) => void): void {
  for (const [name, result] of Object.entries(peers)) fn(name, result);
}

type Mapping = NonNullable<NonNullable<CliResult["summary"]>["nat"]>["mapping"];

/**
 * Both sides' NAT classification and their joint verdict: the outcome, and for a failure the rule
 * that decided it and whose evidence did ("offerer", "answerer" or "both").
 */
function assertVerdict(
  t: Test,
  peers: { offerer: CliResult; answerer: CliResult },
  expected: { offerer: Mapping; answerer: Mapping; reason: string; decidedBy?: "offerer" | "answerer" | "both" },
): void {
  const idOf = (name: "offerer" | "answerer") => peers[name].summary?.peerId;
  eachPeer(peers, (name, result) => {
    t.equal(result.summary?.nat?.mapping, expected[name as "offerer" | "answerer"], `the ${name} classifies its NAT's mapping (${result.summary?.nat?.mapping})`);
    const verdict = result.summary?.verdict;
    t.equal(verdict?.remoteReported, true, `the ${name} got the other side's evidence`);
    t.equal(verdict?.reason, expected.reason, `the ${name}'s joint verdict: ${verdict?.text}`);
    if (expected.decidedBy) {
      const by = expected.decidedBy === "both" ? "both" : idOf(expected.decidedBy);
      t.equal(verdict?.decidedBy, by, `the ${name}'s verdict was decided by ${expected.decidedBy === "both" ? "both sides'" : `the ${expected.decidedBy}'s`} evidence`);
    }
  });
}

function assertDirect(t: Test, name: string, result: CliResult): void {
  const pair = result.summary?.selectedPair;
  t.equal(result.code, 0, `${name} connects and exits 0 (${seen(result)})`);
  t.ok(pair && pair.local.type !== "relay" && pair.remote.type !== "relay", `${name}'s selected pair uses no relay`);
  t.ok(
    pair && [pair.local.type, pair.remote.type].some((type) => type === "srflx" || type === "prflx"),
    `${name}'s selected pair crosses the NATs through a server- or peer-reflexive candidate`,
  );
}

if (!unavailable) {
  const lab = await startNatLab(t, {
    sites: { "cone-a": "cone", "cone-b": "cone", "sym-a": "symmetric", "sym-b": "symmetric", blocked: "udp-blocked" },
  });
  // The scenarios share the lab (different sites or rooms) and run at once: most of their time is
  // spent waiting on ICE and STUN timeouts, not on the CPU.
  t.jobs = 6;

  t.test("Node peers behind two cone NATs connect directly with STUN alone", async (t) => {
    const peers = await meet(lab, { site: "cone-a" }, { site: "cone-b" });
    eachPeer(peers, (name, result) => assertDirect(t, name, result));
    assertVerdict(t, peers, { offerer: "endpoint-independent", answerer: "endpoint-independent", reason: "connected" });
  });

  t.test("a Node offerer and a Deno answerer behind two cone NATs connect directly with STUN alone", async (t) => {
    const peers = await meet(lab, { site: "cone-a" }, { site: "cone-b", runtime: "deno" });
    eachPeer(peers, (name, result) => assertDirect(t, name, result));
    t.match(peers.answerer.summary?.runtime, /^deno /, "the answerer ran on Deno");
    assertVerdict(t, peers, { offerer: "endpoint-independent", answerer: "endpoint-independent", reason: "connected" });
  });

  t.test("peers behind two symmetric NATs fail with STUN alone, and say NAT traversal failed", async (t) => {
    const peers = await meet(lab, { site: "sym-a" }, { site: "sym-b" });
    eachPeer(peers, (name, result) => {
      const s = result.summary;
      t.equal(result.code, 4, `${name} exits 4 (${seen(result)})`);
      t.equal(s?.connected, false, `${name} did not connect`);
      t.ok(s?.candidates.local.some((c) => c.type === "srflx"), `${name} learned its public address from STUN`);
    });
    // Whichever peer sees its pairs fail first diagnoses the NATs and says bye with its reason.
    const diagnosed = ([, result]: [string, CliResult]) => (result.summary?.error?.reason === "nat-traversal-failed" ? 0 : 1);
    const [first, second] = Object.entries(peers).sort((x, y) => diagnosed(x) - diagnosed(y));
    const [firstName, firstResult] = first!;
    t.equal(firstResult.summary?.error?.reason, "nat-traversal-failed", `${firstName}, the first to give up, says NAT traversal failed`);
    t.match(firstResult.summary?.error?.hints.join(" "), /--with-turn/, `${firstName} suggests TURN`);
    // The other then gets that bye during ICE; it has the same evidence (srflx on both sides), so
    // it names the same cause instead of "peer left".
    const [secondName, secondResult] = second!;
    t.equal(secondResult.summary?.error?.reason, "nat-traversal-failed", `${secondName}, told by its peer, says NAT traversal failed too`);
    t.match(secondResult.summary?.error?.hints.join(" "), /--with-turn/, `${secondName} suggests TURN too`);
    assertVerdict(t, peers, { offerer: "address-and-port-dependent", answerer: "address-and-port-dependent", reason: "symmetric-nat", decidedBy: "both" });
  });

  t.test("peers behind two symmetric NATs connect through the TURN relay the server hands out", async (t) => {
    const peers = await meet(lab, { site: "sym-a" }, { site: "sym-b" }, ["--with-turn"]);
    eachPeer(peers, (name, result) => {
      const pair = result.summary?.selectedPair;
      t.equal(result.code, 0, `${name} connects and exits 0 (${seen(result)})`);
      t.ok(pair?.local.type === "relay" || pair?.remote.type === "relay", `${name}'s selected pair goes through the relay`);
      t.match(result.summary?.iceServers.turn?.username, /^\d+:/, `${name} used the REST credentials the server minted`);
    });
    assertVerdict(t, peers, { offerer: "address-and-port-dependent", answerer: "address-and-port-dependent", reason: "connected" });
  });

  t.test("a peer whose network blocks UDP fails with STUN alone, and says UDP is blocked", async (t) => {
    const peers = await meet(lab, { site: "blocked" }, { site: "cone-b" });
    const blocked = peers.offerer;
    t.equal(blocked.code, 4, `the blocked peer exits 4 (${seen(blocked)})`);
    t.notOk(blocked.summary?.candidates.local.some((c) => c.type === "srflx"), "the blocked peer got no STUN answer");
    t.equal(blocked.summary?.error?.reason, "udp-blocked", "the blocked peer says outbound UDP looks blocked");
    t.equal(peers.answerer.code, 4, `its peer exits 4 too (${seen(peers.answerer)})`);
    t.ok(
      ["peer-unreachable", "udp-blocked"].includes(peers.answerer.summary?.error?.reason ?? ""),
      `its peer blames the blocked side's network, not its own (${peers.answerer.summary?.error?.reason})`,
    );
    assertVerdict(t, peers, { offerer: "unknown", answerer: "endpoint-independent", reason: "udp-blocked", decidedBy: "offerer" });
  });

  t.test("a peer whose network blocks UDP connects through TURN over TCP", async (t) => {
    const [user, password] = restCredentials(lab.turnSecret, "lab-tcp");
    const turn = ["--turn", `turn:${lab.turnIp}:${lab.turnPort}?transport=tcp`, "--turn-user", user, "--turn-password", password];
    const peers = await meet(lab, { site: "blocked" }, { site: "cone-b" }, turn);
    eachPeer(peers, (name, result) => t.equal(result.code, 0, `${name} connects and exits 0 (${seen(result)})`));
    const local = peers.offerer.summary?.selectedPair?.local;
    t.equal(local?.type, "relay", "the blocked peer sends through its relay candidate");
    t.equal(local?.relayProtocol, "tcp", "and reaches the relay over TCP");
    assertVerdict(t, peers, { offerer: "unknown", answerer: "endpoint-independent", reason: "connected" });
  });
}
