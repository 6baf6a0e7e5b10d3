// Prometheus metrics, on their own HTTP port so the public gRPC port never exposes them.
// Counters and histograms follow the calls (a CallObserver fed by instrument.ts); gauges of the
// broker's state are read on each scrape from its stats().
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { status } from "@grpc/grpc-js";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { SubscribeResponse } from "../gen/icetest/signaling/v1/signaling.ts";
import type { Broker, BrokerStats } from "./broker.ts";
import type { CallEnd, CallInfo, CallObserver } from "./instrument.ts";
import { toListenError } from "./listen-error.ts";
import { SIGNALING_SERVICE_NAME } from "./reflection.ts";

/** Unary calls answer in well under a millisecond on loopback; seconds mean trouble. */
const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export class Metrics {
  readonly registry = new Registry();
  private readonly startedCalls = new Counter({
    name: "grpc_server_started_total",
    help: "Calls started, by service and method",
    labelNames: ["grpc_service", "grpc_method", "grpc_type"],
    registers: [this.registry],
  });
  private readonly handled = new Counter({
    name: "grpc_server_handled_total",
    help: "Calls finished, by service, method and status code",
    labelNames: ["grpc_service", "grpc_method", "grpc_code"],
    registers: [this.registry],
  });
  private readonly latency = new Histogram({
    name: "grpc_server_handling_seconds",
    help: "Time from a unary call's arrival to its status (streams are left out: they last a session)",
    labelNames: ["grpc_service", "grpc_method"],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly streams = new Gauge({
    name: "icetest_subscribe_streams",
    help: "Open Subscribe streams",
    registers: [this.registry],
  });
  private readonly queued = new Counter({
    name: "icetest_messages_queued_total",
    help: "Signaling messages accepted by SendMessage and queued for their recipient",
    registers: [this.registry],
  });
  private readonly refused = new Counter({
    name: "icetest_messages_refused_total",
    help: "SendMessage calls refused, by status code (RESOURCE_EXHAUSTED: the recipient's queue is full)",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  private readonly relayed = new Counter({
    name: "icetest_messages_relayed_total",
    help: "Signaling messages written to their recipient's Subscribe stream",
    registers: [this.registry],
  });

  constructor(broker: Pick<Broker, "stats">) {
    collectDefaultMetrics({ register: this.registry });
    this.addBrokerGauges(broker);
  }

  readonly observer: CallObserver = {
    started: (call) => {
      this.startedCalls.inc({ grpc_service: call.service, grpc_method: call.method, grpc_type: call.streaming ? "stream" : "unary" });
      if (isSubscribe(call)) this.streams.inc();
    },
    sent: (call, message) => {
      if (isSubscribe(call) && (message as SubscribeResponse).event?.$case === "message") this.relayed.inc();
    },
    finished: (call, end) => this.finished(call, end),
  };

  private finished(call: CallInfo, end: CallEnd): void {
    const labels = { grpc_service: call.service, grpc_method: call.method };
    this.handled.inc({ ...labels, grpc_code: status[end.code] ?? String(end.code) });
    if (!call.streaming) this.latency.observe(labels, end.seconds);
    if (isSubscribe(call)) this.streams.dec();
    if (call.service === SIGNALING_SERVICE_NAME && call.method === "SendMessage") {
      if (end.code === status.OK) this.queued.inc();
      else this.refused.inc({ reason: status[end.code] ?? String(end.code) });
    }
  }

  private addBrokerGauges(broker: Pick<Broker, "stats">): void {
    const gauge = (name: string, help: string, read: (stats: BrokerStats) => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        async collect() {
          this.set(read(await broker.stats()));
        },
      });
    gauge("icetest_peers", "Registered peers", (stats) => stats.peers);
    gauge("icetest_rooms", "Rooms with at least one peer", (stats) => stats.rooms);
    gauge("icetest_held_events", "Events held for peers: undelivered, plus delivered ones kept for resume", (stats) => stats.heldEvents);
    gauge("icetest_held_bytes", "Wire size of the events held for peers (bounded by the server-wide byte budget)", (stats) => stats.heldBytes);
  }
}

function isSubscribe(call: CallInfo): boolean {
  return call.service === SIGNALING_SERVICE_NAME && call.method === "Subscribe";
}

export interface MetricsEndpoint {
  readonly port: number;
  close(): Promise<void>;
}

/** Serves GET /metrics (any other path is 404) on host:port; 0 picks a free port. */
export async function serveMetrics(registry: Registry, host: string, port: number): Promise<MetricsEndpoint> {
  const server: Server = createServer((request, response) => {
    if (request.method !== "GET" || request.url?.split("?")[0] !== "/metrics") {
      response.writeHead(404, { "content-type": "text/plain" }).end("Not found: metrics are at GET /metrics\n");
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { "content-type": registry.contentType }).end(text),
      (err: unknown) => response.writeHead(500, { "content-type": "text/plain" }).end(`Cannot collect metrics: ${(err as Error).message}\n`),
    );
  });
  server.listen(port, host);
  try {
    await Promise.race([once(server, "listening"), once(server, "error").then(([err]) => Promise.reject(err))]);
  } catch (err) {
    throw new Error(`Cannot serve metrics: ${toListenError(err, "tcp", host, port).message} (try another --metrics-port)`, { cause: err });
  }
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
