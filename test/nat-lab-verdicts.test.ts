// The joint verdict across real NATs: each peer measures its own NAT before ICE, both exchange
// their evidence at the end, and both print the same verdict, naming the side whose NAT breaks
// hole punching. Every scenario checks the outcome and BOTH sides' NAT classification and verdict.
import t, { type Test } from "tap";
import { natLabUnavailable, restCredentials, startNatLab, type NatLab } from "./fixtures/nat-lab.ts";
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

interface Side {
  readonly site: string;
  /** Flags for this side only, after the common ones. */
  readonly flags?: readonly string[];
  /** A tcp443-only site reaches signaling on port 443 only. */
  readonly signalingAddr?: string;
}

/** alice offers from her site, bob answers from his; both run to their end. */
async function meet(lab: NatLab, aliceSide: string | Side, bobSide: string | Side, flags: readonly string[] = []) {
  const room = uniqueRoom("verdict");
  const common = ["--room", room, "--json", "--messages", "2", "--timeout", "60s", "--wait", "40s", ...flags];
  const run = (role: string, id: string, side: string | Side) => {
    const { site, flags: own = [], signalingAddr = lab.signalingAddr } = typeof side === "string" ? { site: side } : side;
    return lab.runPeer(lab.lan(site), "node", ["--role", role, "--id", id, "--signaling-addr", signalingAddr, ...common, ...own]);
  };
  const [alice, bob] = await Promise.all([run("offerer", "alice", aliceSide), run("answerer", "bob", bobSide)]);
  return { alice, bob };
}

/** TURN on port 443 with REST credentials: over TLS (trusting the lab's CA unless told not to) or plain TCP. */
function turn443(lab: NatLab, transport: "tls" | "tcp", trustCa = true, secret = lab.turnSecret): string[] {
  const [user, password] = restCredentials(secret, `lab-${transport}`);
  const url = transport === "tls" ? `turns:${lab.turnIp}:${lab.turnTlsPort}` : `turn:${lab.turnIp}:${lab.turnTlsPort}?transport=tcp`;
  return ["--turn", url, "--turn-user", user, "--turn-password", password, ...(trustCa && transport === "tls" ? ["--turn-ca", lab.turnCaFile] : [])];
}

function selectedLocal(result: CliResult): { type?: string; relayProtocol?: string } {
  return result.summary?.selectedPair?.local ?? {};
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
  const lab = await startNatLab(t, { sites: { "cone-a": "cone", "cone-b": "cone", "sym-a": "symmetric", "sym-b": "symmetric", web: "tcp443-only" } });
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
      t.match(verdict?.text, /(alice's and bob's|bob's and alice's) NATs break hole punching: a direct path is (impossible|unlikely)/, `${name}'s verdict names both NATs`);
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

  t.test("an unreachable STUN server, peers behind two different NATs: neither learns a public address, and both blame the STUN server, not both networks", async (t) => {
    const peers = await meet(lab, "cone-a", "cone-b", ["--stun", "stun:198.51.100.9:3478"]);
    for (const [name, result] of Object.entries(peers)) {
      t.equal(result.code, 4, `${name} does not connect (${seen(result)})`);
      t.equal(natOf(result).mapping, "unknown", `${name} could not measure its NAT`);
      const verdict = verdictOf(result);
      t.equal(verdict?.reason, "stun-unreachable", `${name}'s joint verdict blames the STUN server`);
      t.equal(verdict?.decidedBy, "both", `${name}'s verdict was decided by both sides' evidence`);
      t.match(verdict?.text, /neither peer got an answer from the STUN server stun:198\.51\.100\.9:3478/, `${name}'s verdict names the server`);
    }
  });

  for (const transport of ["tls", "tcp"] as const) {
    t.test(`a network that passes only TCP to port 443: TURN/${transport.toUpperCase()} on 443 carries the connection, NAT unmeasured on that side`, async (t) => {
      const web = { site: "web", signalingAddr: lab.signalingAddr443 };
      const peers = await meet(lab, web, "cone-b", turn443(lab, transport));
      t.equal(selectedLocal(peers.alice).type, "relay", `alice, behind the 443-only firewall, sends through her relay candidate (${seen(peers.alice)})`);
      t.equal(selectedLocal(peers.alice).relayProtocol, transport, `and reaches the relay over ${transport.toUpperCase()}`);
      t.equal(natOf(peers.alice).mapping, "unknown", "alice cannot measure her NAT: no STUN answer gets through");
      t.equal(natOf(peers.bob).mapping, "endpoint-independent", "bob measures an endpoint-independent mapping");
      for (const [name, result] of Object.entries(peers)) {
        t.equal(result.code, 0, `${name} connects (${seen(result)})`);
        const verdict = verdictOf(result);
        t.equal(verdict?.connected, true, `${name}'s joint verdict says connected`);
        t.equal(verdict?.remoteReported, true, `${name} got the other side's evidence`);
        t.match(verdict?.text, /alice: NAT not measured \(no STUN answer\)/, `${name}'s verdict says alice's NAT was not measured`);
        t.match(verdict?.text, /bob: (port-restricted )?cone NAT/, `${name}'s verdict names bob's NAT`);
      }
      t.match(verdictOf(peers.alice)?.notes?.join(" "), /STUN server stun:198\.51\.100\.1:3478 did not answer within [\d.]+ s; relay candidates carried the connection/, "alice names her stall");
    });
  }

  t.test("a network that passes only TCP to port 443, TURN/TLS with a private CA not given: both name the untrusted certificate and --turn-ca", async (t) => {
    const web = { site: "web", signalingAddr: lab.signalingAddr443, flags: turn443(lab, "tls", false) };
    const peers = await meet(lab, web, "cone-b");
    t.equal(natOf(peers.alice).mapping, "unknown", `alice cannot measure her NAT (${seen(peers.alice)})`);
    t.equal(natOf(peers.bob).mapping, "endpoint-independent", `bob measures an endpoint-independent mapping (${seen(peers.bob)})`);
    for (const [name, result] of Object.entries(peers)) {
      t.equal(result.code, 4, `${name} does not connect (${seen(result)})`);
      const verdict = verdictOf(result);
      t.equal(verdict?.reason, "turn-tls-untrusted", `${name}'s joint verdict names the untrusted TURN certificate`);
      t.equal(verdict?.decidedBy, "alice", `${name}'s verdict was decided by alice's evidence`);
      t.match(verdict?.text, /alice's TURN server turns:198\.51\.100\.2:443: its certificate is not trusted .*--turn-ca FILE/, `${name}'s verdict says how to trust it`);
    }
    t.equal(peers.alice.summary?.error?.reason, "turn-tls-untrusted", "alice's own reason is the untrusted certificate, even when bob gives up first");
  });

  t.test("a network that passes only TCP to port 443, TURN refusing the credentials: both name the refusal, decided by that side", async (t) => {
    const web = { site: "web", signalingAddr: lab.signalingAddr443, flags: turn443(lab, "tls", true, "not-the-secret") };
    const peers = await meet(lab, web, "cone-b");
    t.equal(natOf(peers.alice).mapping, "unknown", `alice cannot measure her NAT (${seen(peers.alice)})`);
    t.equal(natOf(peers.bob).mapping, "endpoint-independent", `bob measures an endpoint-independent mapping (${seen(peers.bob)})`);
    t.equal(peers.alice.summary?.error?.reason, "turn-refused", "alice's own reason is the refusal");
    for (const [name, result] of Object.entries(peers)) {
      t.equal(result.code, 4, `${name} does not connect (${seen(result)})`);
      const verdict = verdictOf(result);
      t.equal(verdict?.reason, "turn-refused", `${name}'s joint verdict names the TURN refusal`);
      t.equal(verdict?.decidedBy, "alice", `${name}'s verdict was decided by alice's evidence`);
      t.match(verdict?.text, /TURN server turns:198\.51\.100\.2:443 refused the allocation: 401/, `${name}'s verdict gives the server's answer`);
    }
  });
}
