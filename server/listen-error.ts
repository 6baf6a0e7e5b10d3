// Turns "cannot bind" failures from grpc-js and dgram into one sentence naming the port and why.
// grpc-js folds the socket error into its message text, so the code is recovered from there.

export type Transport = "tcp" | "udp";

export class ListenError extends Error {
  override readonly name = "ListenError";

  constructor(
    message: string,
    /** The errno name, such as EADDRINUSE or EACCES, when known. */
    readonly code: string | undefined,
    readonly transport: Transport,
    readonly port: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const KNOWN_CODES = ["EADDRINUSE", "EACCES", "EADDRNOTAVAIL"] as const;

export function toListenError(err: unknown, transport: Transport, host: string, port: number): ListenError {
  const code = errorCode(err);
  const what = transport === "udp" ? `UDP port ${port}` : `port ${port}`;
  return new ListenError(`Cannot listen on ${what}: ${reason(code, host, port, err)}`, code, transport, port, { cause: err });
}

function reason(code: string | undefined, host: string, port: number, err: unknown): string {
  switch (code) {
    case "EADDRINUSE":
      return `port ${port} is already in use on ${host}`;
    case "EACCES":
      return port > 0 && port < 1024 ? "ports below 1024 need root or CAP_NET_BIND_SERVICE" : "permission denied";
    case "EADDRNOTAVAIL":
      return `${host} is not an address of this machine`;
    default:
      return err instanceof Error ? err.message : String(err);
  }
}

function errorCode(err: unknown): string | undefined {
  const own = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof own === "string") return own;
  const text = err instanceof Error ? err.message : String(err);
  return KNOWN_CODES.find((code) => text.includes(code));
}

/** What a command-line user can do about it, as " (try …)", or "" when there is no general advice. */
export function cliHint(err: ListenError): string {
  const flag = err.transport === "tcp" ? "--port" : "--stun-port";
  if (err.code === "EACCES" && err.port < 1024) return ` (try ${flag} ${err.transport === "tcp" ? 8443 : 3478})`;
  if (err.code !== "EADDRINUSE") return "";
  if (err.transport === "tcp") return ` (stop the other server, or try another ${flag})`;
  return ` (another STUN or TURN server? try another ${flag}, or --no-stun)`;
}
