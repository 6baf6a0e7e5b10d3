// Health and reflection, answered to the clients operators use: a grpc.health.v1 client (what
// grpc_health_probe and Kubernetes run) and a reflection client doing what grpcurl's list,
// describe and call do, from nothing but what the server tells it.
import { createRequire } from "node:module";
import * as grpc from "@grpc/grpc-js";
import { loadFileDescriptorSetFromBuffer } from "@grpc/proto-loader";
import t from "tap";
import { check, healthClient, reflect } from "./fixtures/grpc-tools.ts";
import { startTestServer } from "./fixtures/server.ts";

const require = createRequire(import.meta.url);
const descriptor = require("protobufjs/ext/descriptor") as {
  FileDescriptorProto: { decode(bytes: Uint8Array): FileDescriptor };
  FileDescriptorSet: { encode(set: { file: FileDescriptor[] }): { finish(): Uint8Array } };
};

interface FileDescriptor {
  name: string;
  dependency: string[];
  service: Array<{ name: string; method: Array<{ name: string; inputType: string; outputType: string; serverStreaming?: boolean }> }>;
}

const SIGNALING = "icetest.signaling.v1.SignalingService";

t.test("health answers SERVING for the server and the signaling service, NOT_FOUND for others", async (t) => {
  const server = await startTestServer(t, { stunPort: null });
  const client = healthClient(server.address);
  t.teardown(() => client.close());
  t.equal(await check(client, ""), "SERVING", "the server as a whole is SERVING");
  t.equal(await check(client, SIGNALING), "SERVING", "the signaling service is SERVING");
  const err = await check(client, "no.such.Service").then(
    () => undefined,
    (e: grpc.ServiceError) => e,
  );
  t.equal(err?.code, grpc.status.NOT_FOUND, "an unknown service is NOT_FOUND, as the health protocol says");
});

t.test("health is answered over TLS too", async (t) => {
  const server = await startTestServer(t, { stunPort: null, tls: true });
  const client = healthClient(server.address, grpc.credentials.createSsl(Buffer.from(server.caPem!)), { "grpc.ssl_target_name_override": "localhost" });
  t.teardown(() => client.close());
  t.equal(await check(client, ""), "SERVING", "SERVING over TLS");
});

for (const version of ["v1", "v1alpha"] as const) {
  t.test(`reflection ${version}: list, describe and call, as grpcurl does`, async (t) => {
    const server = await startTestServer(t, { stunPort: null });

    const listed = await reflect(server.address, version, { list_services: "" });
    const names = listed.list_services_response?.service.map((service) => service.name) ?? [];
    t.ok(names.includes(SIGNALING), `list shows the signaling service (${names.join(", ")})`);
    t.ok(names.includes("grpc.health.v1.Health"), "and the health service");

    const described = await reflect(server.address, version, { file_containing_symbol: SIGNALING });
    const files = (described.file_descriptor_response?.file_descriptor_proto ?? []).map((bytes) => descriptor.FileDescriptorProto.decode(bytes));
    const service = files.flatMap((file) => file.service).find((candidate) => candidate.name === "SignalingService");
    t.same(service?.method.map((method) => method.name).sort(), ["Leave", "Register", "SendMessage", "Subscribe"], "describe shows the four methods");
    const signalingFile = files.find((file) => file.service.some((candidate) => candidate.name === "SignalingService"));
    const imported = files.filter((file) => signalingFile?.dependency.includes(file.name));
    t.ok(imported.some((file) => /google/.test(file.name)), `the service's file names the file of google.protobuf.Timestamp among its imports (${signalingFile?.dependency.join(", ")}), as strict tools like grpcurl need`);
    t.equal(imported.length, signalingFile?.dependency.length, "and every import it names comes with it");

    const missing = await reflect(server.address, version, { file_containing_symbol: "no.such.Symbol" });
    t.equal(missing.error_response?.error_code, grpc.status.NOT_FOUND, "an unknown symbol is NOT_FOUND");

    // A call built from the descriptors alone: what `grpcurl -d '{...}' host Register` does.
    const set = Buffer.from(descriptor.FileDescriptorSet.encode({ file: files }).finish());
    const definitions = loadFileDescriptorSetFromBuffer(set, { keepCase: true, defaults: true });
    const Client = grpc.makeGenericClientConstructor(definitions[SIGNALING] as grpc.ServiceDefinition, SIGNALING);
    const client = new Client(server.address, grpc.credentials.createInsecure()) as unknown as {
      Register(request: object, callback: (err: grpc.ServiceError | null, response: { peer_id: string; room: string }) => void): void;
      close(): void;
    };
    t.teardown(() => client.close());
    const response = await new Promise<{ peer_id: string; room: string }>((resolve, reject) =>
      client.Register({ room: "reflected", peer_id: "curl" }, (err, res) => (err ? reject(err) : resolve(res))),
    );
    t.same({ peer: response.peer_id, room: response.room }, { peer: "curl", room: "reflected" }, "a Register call built from reflection is answered");
  });
}
