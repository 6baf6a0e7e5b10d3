// The metrics endpoint, scraped as Prometheus does, and the log of refused calls: counters move
// when a message is relayed and when a call is refused, gauges show the broker's state.
import { once } from "node:events";
import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import t from "tap";
import type { RegisterResponse, SignalingServiceClient } from "../gen/icetest/signaling/v1/signaling.ts";
import { connect, startTestServer } from "./fixtures/server.ts";

const CALL_LIMIT_MS = 5_000;

function register(client: SignalingServiceClient, peerId: string): Promise<RegisterResponse> {
  return new Promise((resolve, reject) =>
    client.register({ room: "metrics", peerId, client: undefined }, new Metadata(), { deadline: Date.now() + CALL_LIMIT_MS }, (err, res) => (err ? reject(err) : resolve(res))),
  );
}

function send(client: SignalingServiceClient, sessionToken: string, toPeerId: string): Promise<unknown> {
  return new Promise((resolve, reject) =>
    client.sendMessage({ sessionToken, toPeerId, signal: { kind: { $case: "text", value: "hello" } } }, new Metadata(), { deadline: Date.now() + CALL_LIMIT_MS }, (err, res) =>
      err ? reject(err) : resolve(res),
    ),
  );
}

async function scrape(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}`);
  return response.text();
}

/** The value of one sample line, e.g. `icetest_peers` or `grpc_server_handled_total{...}`. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  for (const line of text.split("\n")) {
    const match = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = match[2]?.split(",") ?? [];
    if (wanted.every((label) => have.includes(label))) return Number(match[3]);
  }
  return 0;
}

t.test("scraped metrics count relayed messages, refused calls by status, streams, peers and queues", async (t) => {
  const server = await startTestServer(t, { stunPort: null, metrics: { host: "127.0.0.1", port: 0 } });
  const port = server.metricsPort!;
  const client = connect(t, server);
  const alice = await register(client, "alice");
  const bob = await register(client, "bob");
  const stream = client.subscribe({ sessionToken: bob.sessionToken });
  t.teardown(() => stream.cancel());
  stream.on("error", () => {});
  const events: string[] = [];
  stream.on("data", (event: { event?: { $case: string } }) => events.push(event.event?.$case ?? ""));
  await once(stream, "data");

  await send(client, alice.sessionToken, "carol").catch((err: ServiceError) => t.equal(err.code, status.NOT_FOUND, "sending to nobody is NOT_FOUND"));
  await send(client, alice.sessionToken, "bob");
  while (!events.includes("message")) await once(stream, "data");

  const text = await scrape(port);
  t.equal(sample(text, "icetest_messages_queued_total"), 1, "one message queued");
  t.equal(sample(text, "icetest_messages_relayed_total"), 1, "one message relayed to its recipient's stream");
  t.equal(sample(text, "icetest_messages_refused_total", { reason: "NOT_FOUND" }), 1, "one refused, by status");
  t.equal(sample(text, "icetest_subscribe_streams"), 1, "one open stream");
  t.equal(sample(text, "icetest_peers"), 2, "two peers");
  t.equal(sample(text, "icetest_rooms"), 1, "one room");
  t.equal(sample(text, "grpc_server_handled_total", { grpc_method: "Register", grpc_code: "OK" }), 2, "two Registers handled OK");
  t.equal(sample(text, "grpc_server_handling_seconds_count", { grpc_method: "SendMessage" }), 2, "SendMessage latency observed twice");
  t.ok(sample(text, "process_resident_memory_bytes") > 0, "process metrics are there too");

  t.match(server.lines.join("\n"), /refused method=SendMessage code=NOT_FOUND details="Cannot send to peer \\"carol\\"[^\n]* from=/, "the refused call is logged with its status, message and client");

  const stranger = await fetch(`http://127.0.0.1:${port}/`);
  t.equal(stranger.status, 404, "any other path is 404");
});

t.test("queued events and bytes show a peer that does not read its stream", async (t) => {
  const server = await startTestServer(t, { stunPort: null, metrics: { host: "127.0.0.1", port: 0 } });
  const client = connect(t, server);
  const alice = await register(client, "alice");
  await register(client, "bob");
  for (let i = 0; i < 3; i++) await send(client, alice.sessionToken, "bob");
  const text = await scrape(server.metricsPort!);
  t.equal(sample(text, "icetest_held_events"), 4, "bob's three messages and alice's peer_joined wait: neither has a stream");
  t.ok(sample(text, "icetest_held_bytes") > 3 * "hello".length, `and their bytes (${sample(text, "icetest_held_bytes")})`);
});
