// grpc.health.v1 for load balancers and orchestrators: the whole server ("") and the signaling
// service are SERVING while the server accepts calls and NOT_SERVING from the moment it starts
// draining, so a Check or a Watch sees the shutdown coming before connections close.
import type * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { SIGNALING_SERVICE_NAME } from "./reflection.ts";

export { protoPath as HEALTH_PROTO_PATH } from "grpc-health-check";

/** The services health answers for: "" is the server as a whole. */
const SERVICES = ["", SIGNALING_SERVICE_NAME] as const;

export class Health {
  private readonly implementation = new HealthImplementation(Object.fromEntries(SERVICES.map((name) => [name, "SERVING"])));

  addTo(server: grpc.Server): void {
    this.implementation.addToServer(server);
  }

  /** Watchers are told at once; Check answers NOT_SERVING from now on. */
  draining(): void {
    for (const name of SERVICES) this.implementation.setStatus(name, "NOT_SERVING");
  }
}
