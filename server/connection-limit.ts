// At most `max` open TCP connections from one client IP address; the next ones are closed at once,
// before TLS or HTTP/2 (the client sees UNAVAILABLE). grpc-js has no hook for connections, so this
// listens on the HTTP/2 servers it creates at bind (grpc-js 1.14 keeps them in the private
// `http2Servers` map; test/limits.test.ts fails if that changes). Listening there, rather than
// accepting connections ourselves and injecting them, leaves binding and TLS to grpc-js.
import type { Server } from "@grpc/grpc-js";
import type { Socket } from "node:net";

export interface ConnectionCounter {
  /** Open connections from `address` now. */
  count(address: string): number;
}

export function limitConnectionsPerAddress(server: Server, max: number, onRefused: (address: string) => void): ConnectionCounter {
  const open = new Map<string, number>();
  const servers = (server as unknown as { http2Servers?: Map<{ prependListener(event: "connection", listener: (socket: Socket) => void): void }, unknown> }).http2Servers;
  if (!(servers instanceof Map)) throw new Error("grpc-js no longer exposes its HTTP/2 servers: the per-address connection limit cannot work");
  for (const http2Server of servers.keys()) {
    http2Server.prependListener("connection", (socket: Socket) => {
      const address = socket.remoteAddress ?? "unknown";
      const count = open.get(address) ?? 0;
      if (count >= max) {
        onRefused(address);
        socket.destroy();
        return;
      }
      open.set(address, count + 1);
      socket.once("close", () => {
        const left = (open.get(address) ?? 1) - 1;
        if (left > 0) open.set(address, left);
        else open.delete(address);
      });
    });
  }
  return { count: (address) => open.get(address) ?? 0 };
}
