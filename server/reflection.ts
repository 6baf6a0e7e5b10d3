// gRPC server reflection (v1 and v1alpha), so generic tools (grpcurl, grpcui, Postman) can list,
// describe and call the server without the .proto files. The descriptors come from proto/ and
// the health package's proto, read once at start.
import { fileURLToPath } from "node:url";
import { dirname, relative } from "node:path";
import type * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { protoPath as healthProtoPath } from "grpc-health-check";

export const SIGNALING_SERVICE_NAME = "icetest.signaling.v1.SignalingService";

const PROTO_DIR = fileURLToPath(new URL("../proto/", import.meta.url));
const SIGNALING_PROTO = "icetest/signaling/v1/signaling.proto";
// grpc-health-check ships health/v1/health.proto under its own proto/ folder.
const HEALTH_PROTO_DIR = dirname(dirname(dirname(healthProtoPath)));

export function addReflection(server: grpc.Server): void {
  const definitions = loadSync([SIGNALING_PROTO, relative(HEALTH_PROTO_DIR, healthProtoPath)], {
    includeDirs: [PROTO_DIR, HEALTH_PROTO_DIR],
  });
  new ReflectionService(definitions).addToServer(server);
}
