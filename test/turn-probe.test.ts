// ice-test's own TURN allocation request, against a real coturn: the fast answer werift cannot give.
import t from "tap";
import { createHmac } from "node:crypto";
import { createSocket } from "node:dgram";
import { createServer } from "node:net";
import { coturnMissing, startCoturn } from "./fixtures/coturn.ts";
import { describeProbe, probeTurn } from "../core/turn-probe.ts";

const missing = coturnMissing();
if (missing) t.plan(0, missing);

function rest(secret: string): { username: string; password: string } {
  const username = `${Math.floor(Date.now() / 1000) + 600}:probe`;
  return { username, password: createHmac("sha1", secret).update(username).digest("base64") };
}

if (!missing) {
  t.test("a TURN server that takes the credentials: allocated, over UDP and TCP", async (t) => {
    const turn = await startCoturn(t);
    for (const transport of ["udp", "tcp"] as const) {
      const url = `turn:127.0.0.1:${turn.port}${transport === "tcp" ? "?transport=tcp" : ""}`;
      const result = await probeTurn({ url, transport, ...rest(turn.secret) });
      t.match(result, { outcome: "allocated", relayedAddress: /^127\.0\.0\.1:\d+$/ }, `${transport}: allocated with a relay address`);
      t.match(describeProbe(url, result), /accepted the credentials/, `${transport}: described as accepted`);
    }
  });

  t.test("wrong credentials: refused with the server's 401 at once", async (t) => {
    const turn = await startCoturn(t);
    const url = `turn:127.0.0.1:${turn.port}`;
    const result = await probeTurn({ url, transport: "udp", username: rest(turn.secret).username, password: "wrong" });
    t.match(result, { outcome: "refused", code: 401, reason: /Unauthorized/i }, "refused: 401 Unauthorized");
    t.ok(result.ms < 2000, `answered in ${result.ms} ms, not after werift's 12.7 s`);
  });
}

t.test("a silent UDP port: no answer within the limit", async (t) => {
  const silent = createSocket("udp4");
  await new Promise<void>((resolve) => silent.bind(0, "127.0.0.1", resolve));
  t.teardown(() => silent.close());
  const url = `turn:127.0.0.1:${silent.address().port}`;
  const result = await probeTurn({ url, transport: "udp", username: "u", password: "p" }, 600);
  t.equal(result.outcome, "no-answer", "no answer");
  t.match(describeProbe(url, result), /did not answer within \d+ ms/, "described as silent");
});

t.test("a closed TCP port: the connection error is the answer", async (t) => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const result = await probeTurn({ url: `turn:127.0.0.1:${port}?transport=tcp`, transport: "tcp", username: "u", password: "p" }, 2000);
  t.match(result, { outcome: "error", message: /ECONNREFUSED/ }, "connection refused");
});
