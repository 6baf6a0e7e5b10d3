// TURN with a real coturn on loopback: relayed connections over UDP and TCP, and a refused one
// diagnosed as such.
import t from "tap";
import { createHmac } from "node:crypto";
import { coturnMissing, startCoturn } from "./fixtures/coturn.ts";
import { startTestServer } from "./fixtures/server.ts";
import { loopbackFlags, meetCli, runCli, uniqueRoom } from "./fixtures/peers.ts";

const missing = coturnMissing();
if (missing) t.plan(0, missing);

/** coturn's REST credentials (--use-auth-secret), made the way the signaling server makes them. */
function restCredentials(secret: string, user: string): [string, string] {
  const username = `${Math.floor(Date.now() / 1000) + 3600}:${user}`;
  return [username, createHmac("sha1", secret).update(username).digest("base64")];
}

if (!missing) {
  // Every TURN test runs the CLIs as processes: werift keeps TURN allocations' sockets and refresh
  // timers alive after close(), which would keep an in-process test file from ending.
  t.test("relay-only Node peers connect through TURN handed out by the server (TURN/UDP)", async (t) => {
    const turn = await startCoturn(t);
    const server = await startTestServer(t, { turn: { urls: [`turn:127.0.0.1:${turn.port}`], secret: turn.secret } });
    const flags = loopbackFlags(`http://${server.address}`, uniqueRoom(), ["--with-turn", "--relay-only"]);
    const peers = await meetCli(t, { offerer: "node", answerer: "node" }, flags);
    for (const [name, result] of Object.entries(peers)) {
      const s = result.summary;
      t.equal(result.code, 0, `${name} exits 0 (${s?.error?.message ?? "no error"})`);
      t.equal(s?.selectedPair?.local.type, "relay", `${name} selected its relay candidate`);
      t.equal(s?.selectedPair?.local.relayProtocol, "udp", `${name} reached TURN over UDP`);
      t.ok(s?.candidates.local.every((c) => c.type === "relay"), `${name} gathered relay candidates only`);
      t.match(s?.iceServers.turn?.username, /^\d+:peer-/, `${name} used the REST credentials the server handed out`);
      t.match(result.events.find((e) => e.event === "turn-probe"), { outcome: "allocated" }, `${name}: the TURN server accepted ice-test's own allocation request`);
    }
  });

  t.test("relay-only Deno peers connect over TURN/TCP given on the command line", async (t) => {
    const turn = await startCoturn(t);
    const server = await startTestServer(t);
    const [user, password] = restCredentials(turn.secret, "tcp-test");
    const flags = loopbackFlags(`http://${server.address}`, uniqueRoom(), [
      "--turn", `turn:127.0.0.1:${turn.port}?transport=tcp`, "--turn-user", user, "--turn-password", password, "--relay-only",
    ]);
    const peers = await meetCli(t, { offerer: "deno", answerer: "deno" }, flags);
    for (const [name, result] of Object.entries(peers)) {
      const s = result.summary;
      t.equal(result.code, 0, `${name} exits 0 (${s?.error?.message ?? "no error"})`);
      t.equal(s?.selectedPair?.local.type, "relay", `${name} selected its relay candidate`);
      t.equal(s?.selectedPair?.local.relayProtocol, "tcp", `${name} says the relay is reached over TCP (werift itself says udp)`);
    }
  });

  t.test("wrong TURN credentials are diagnosed as TURN refused", async (t) => {
    const turn = await startCoturn(t);
    const server = await startTestServer(t);
    const room = uniqueRoom();
    const [user, password] = restCredentials(turn.secret, "good");
    const common = loopbackFlags(`http://${server.address}`, room, ["--relay-only", "--timeout", "40s"]);
    const good = ["--turn", `turn:127.0.0.1:${turn.port}`, "--turn-user", user, "--turn-password", password];
    const bad = ["--turn", `turn:127.0.0.1:${turn.port}`, "--turn-user", user, "--turn-password", "wrong"];
    const [o, a] = await Promise.all([
      runCli("node", ["--role", "offerer", ...common, ...bad], t.teardown),
      runCli("node", ["--role", "answerer", ...common, ...good, "--wait", "3s"], t.teardown),
    ]);
    t.equal(o.code, 4, "the peer with bad credentials exits 4");
    t.equal(o.summary?.connected, false, "and did not connect");
    t.equal(o.summary?.error?.reason, "turn-refused", "reason turn-refused");
    t.match(o.summary?.error?.message, new RegExp(`TURN server turn:127\\.0\\.0\\.1:${turn.port} refused the allocation: 401 Unauthorized`), "the message names the TURN server and its answer");
    t.match(o.summary?.error?.hints.join(" "), /credentials/, "the hint mentions credentials");
    t.match(o.stderr.join("\n"), /^ice-test: The TURN server .* refused the allocation/m, "one clear line on stderr");
    t.ok(o.summary!.timingsMs.total! < 5000, `relay-only gives up as soon as TURN says no, not after werift's 12.7 s (${o.summary?.timingsMs.total} ms)`);
    t.match(o.events.find((e) => e.event === "turn-probe"), { outcome: "refused", code: 401 }, "the TURN probe is reported as an event");
    t.equal(a.code, 4, "its peer exits 4 too");
    // The offerer gives up before, or just after, its offer went out: its peer hears the reason in
    // a bye if the offerer had already picked it, or else only sees that no offer came.
    t.ok(["peer-left", "no-peer"].includes(a.summary?.error?.reason ?? ""), `its peer says why: ${a.summary?.error?.reason}`);
    t.match(a.summary?.error?.message, /gave up before sending an offer \(turn-refused\)|left before the connection was up \(said bye: turn-refused\)|No offer arrived in room/, "in words that point at the offerer");
  });
}
