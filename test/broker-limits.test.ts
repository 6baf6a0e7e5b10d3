// The broker contract (test/fixtures/broker-contract.ts) for the in-memory broker: limits, resume,
// takeover and expiry, without gRPC.
import t from "tap";
import { MemoryBroker } from "../server/memory-broker.ts";
import { brokerContract } from "./fixtures/broker-contract.ts";

brokerContract(t, async (limits) => new MemoryBroker({ limits }));
