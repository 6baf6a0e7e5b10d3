// The broker contract (test/fixtures/broker-contract.ts) for every broker (in memory, Redis):
// limits, resume, takeover and expiry, without gRPC.
import t from "tap";
import { brokerContract } from "./fixtures/broker-contract.ts";
import { brokerKinds } from "./fixtures/brokers.ts";

for (const kind of brokerKinds(t)) {
  t.test(kind.name, { skip: kind.skip }, async (t) => brokerContract(t, (limits) => kind.create(t, { limits })));
}
