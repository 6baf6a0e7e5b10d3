// The joint verdict across real NATs: each peer measures its own NAT before ICE, both exchange
// their evidence at the end, and both print the same verdict, naming the side whose NAT breaks
// hole punching. Every scenario checks the outcome and BOTH sides' NAT classification and verdict.
import t, { type Test } from "tap";
import { natLabUnavailable, startNatLab, type NatLab } from "./fixtures/nat-lab.ts";
import { uniqueRoom, type CliResult } from "./fixtures/peers.ts";

const unavailable = natLabUnavailable();
if (unavailable) t.plan(0, unavailable);

interface Verdict {
  readonly connected: boolean;
  readonly reason: string;
  readonly decidedBy: string;
  readonly text: string;
  readonly remoteReported: boolean;
  readonly notes?: string[];
}

/** alice offers from `aliceSite`, bob answers from `bobSite`; both run to their end. */
async function meet(lab: NatLab, aliceSite: string, bobSite: string, flags: readonly string[] = []) {
  const room = uniqueRoom("verdict");
  const common = ["--signaling-addr", lab.signalingAddr, "--room", room, "--json", "--messages", "2", "--timeout", "60s", "--wait", "40s", ...flags];
  const [alice, bob] = await Promise.all([
    lab.runPeer(lab.lan(aliceSite), "node", ["--role", "offerer", "--id", "alice", ...common]),
    lab.runPeer(lab.lan(bobSite), "node", ["--role", "answerer", "--id", "bob", ...common]),
  ]);
  return { alice, bob };
}

function verdictOf(result: CliResult): Verdict | undefined {
  return (result.summary as unknown as { verdict?: Verdict } | undefined)?.verdict ?? undefined;
}

function natOf(result: CliResult): { mapping?: string; filtering?: string } {
  return (result.summary as unknown as { nat?: { mapping: string; filtering: string } } | undefined)?.nat ?? {};
}

function seen(result: CliResult): string {
  const s = result.summary;
  if (!s) return `no summary (exit ${result.code}); stderr: ${result.stderr.slice(-5).join(" | ")}`;
  return `exit ${s.exitCode}, ${s.error ? `${s.error.reason}: ${s.error.message}` : "connected"}; nat ${JSON.stringify(natOf(result))}; verdict ${verdictOf(result)?.text}`;
}

function assertNat(t: Test, name: string, result: CliResult, mapping: string, filtering: string): void {
  const nat = natOf(result);
  t.equal(nat.mapping, mapping, `${name} measures its NAT's mapping as ${mapping} (${seen(result)})`);
  // Proving a port-dependent filter's silence takes ~2.5 s; a run that ends sooner says unknown, never a guess.
  t.ok([filtering, "unknown"].includes(nat.filtering ?? ""), `${name} measures its NAT's filtering as ${filtering} or not yet (${nat.filtering})`);
}

if (!unavailable) {
  const lab = await startNatLab(t, { sites: { "cone-a": "cone", "cone-b": "cone", "sym-a": "symmetric", "sym-b": "symmetric" } });
  t.jobs = 4;

  t.test("two port-restricted cone NATs: both classify their NAT, connect, and print a connected verdict with both sides' evidence", async (t) => {
    const peers = await meet(lab, "cone-a", "cone-b");
    for (const [name, result] of Object.entries(peers)) {
      t.equal(result.code, 0, `${name} connects (${seen(result)})`);
      // A quick success ends before the filtering test can prove its silence (~2.5 s): then it is
      // reported as unknown, never guessed.
      t.equal(natOf(result).mapping, "endpoint-independent", `${name} measures its NAT's mapping as endpoint-independent`);
      t.ok(["address-and-port-dependent", "unknown"].includes(natOf(result).filtering ?? ""), `${name}'s filtering is port-dependent or not yet measured (${natOf(result).filtering})`);
      const verdict = verdictOf(result);
      t.equal(verdict?.connected, true, `${name}'s joint verdict says connected`);
      t.equal(verdict?.remoteReported, true, `${name} got the other side's evidence`);
      t.match(verdict?.text, /alice: (port-restricted )?cone NAT/, `${name}'s verdict names alice's NAT`);
      t.match(verdict?.text, /bob: (port-restricted )?cone NAT/, `${name}'s verdict names bob's NAT`);
      t.match(verdict?.notes?.join(" "), /in round trips of the selected pair/, `${name} gives its timings in round trips`);
    }
  });

  t.test("a symmetric NAT against a port-restricted cone: both sides name the symmetric side as the one that breaks hole punching", async (t) => {
    const peers = await meet(lab, "sym-a", "cone-b");
    assertNat(t, "alice", peers.alice, "address-and-port-dependent", "address-and-port-dependent");
    assertNat(t, "bob", peers.bob, "endpoint-independent", "address-and-port-dependent");
    for (const [name, result] of Object.entries(peers)) {
      t.equal(result.code, 4, `${name} does not connect (${seen(result)})`);
      const verdict = verdictOf(result);
      t.equal(verdict?.reason, "symmetric-nat", `${name}'s joint verdict blames a symmetric NAT`);
      t.equal(verdict?.decidedBy, "alice", `${name}'s verdict was decided by alice's evidence`);
      t.match(verdict?.text, /alice: NAT rewrites ports per destination \(address-and-port-dependent mapping\)/, `${name}'s verdict names alice's NAT`);
      // "impossible" once bob's port-dependent filtering is proven (~2.5 s), "unlikely" before.
      t.match(verdict?.text, /bob: (port-restricted )?cone NAT/, `${name}'s verdict names bob's NAT`);
      t.match(verdict?.text, /alice's NAT breaks hole punching: a direct path is (impossible|unlikely)[^:]*: use TURN/, `${name}'s verdict blames alice's NAT and says to use TURN`);
    }
  });

  t.test("two symmetric NATs: both sides classify theirs as symmetric and agree both break hole punching", async (t) => {
    const peers = await meet(lab, "sym-a", "sym-b");
    for (const [name, result] of Object.entries(peers)) {
      t.equal(result.code, 4, `${name} does not connect (${seen(result)})`);
      assertNat(t, name, result, "address-and-port-dependent", "address-and-port-dependent");
      const verdict = verdictOf(result);
      t.equal(verdict?.reason, "symmetric-nat", `${name}'s joint verdict blames the symmetric NATs`);
      t.equal(verdict?.decidedBy, "both", `${name}'s verdict was decided by both sides' evidence`);
      t.match(verdict?.text, /(alice and bob|bob and alice)'s NAT breaks hole punching: a direct path is (impossible|unlikely)/, `${name}'s verdict names both NATs`);
    }
  });

  t.test("a symmetric NAT with TURN: both connect through the relay and the verdict still names both NATs", async (t) => {
    const peers = await meet(lab, "sym-a", "cone-b", ["--with-turn"]);
    t.equal(natOf(peers.alice).mapping, "address-and-port-dependent", `alice measures a symmetric mapping (${seen(peers.alice)})`);
    t.equal(natOf(peers.bob).mapping, "endpoint-independent", "bob measures an endpoint-independent mapping");
    for (const [name, result] of Object.entries(peers)) {
      t.equal(result.code, 0, `${name} connects through TURN (${seen(result)})`);
      t.equal(verdictOf(result)?.connected, true, `${name}'s joint verdict says connected`);
      t.match(verdictOf(result)?.text, /alice: NAT rewrites ports per destination/, `${name}'s verdict names alice's symmetric NAT`);
    }
  });

  t.test("an unreachable STUN server on one LAN: both connect on host candidates, NAT unmeasured, and the stall is named", async (t) => {
    const peers = await meet(lab, "cone-a", "cone-a", ["--stun", "stun:198.51.100.9:3478"]);
    for (const [name, result] of Object.entries(peers)) {
      t.equal(result.code, 0, `${name} connects (${seen(result)})`);
      t.equal(natOf(result).mapping, "unknown", `${name} could not measure its NAT`);
      t.equal(verdictOf(result)?.connected, true, `${name}'s joint verdict says connected`);
      t.match(verdictOf(result)?.notes?.join(" "), /STUN server stun:198\.51\.100\.9:3478 did not answer within [\d.]+ s; host candidates carried the connection/, `${name} names the stall`);
    }
  });
}
