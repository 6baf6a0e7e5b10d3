// Resets a server call's HTTP/2 stream (RST_STREAM CANCEL). grpc-js sends a call's status only
// after every queued message has gone out, so a stream whose client stopped reading (flow control)
// would hold its buffers and its status for ever; a reset frees both at once. grpc-js has no public
// way to do this: the HTTP/2 stream is found behind its call objects (grpc-js 1.14: the writable
// stream's `call`, then `nextCall` through any interceptors, then `stream`). If a later grpc-js
// moves it, nothing is reset and the stream ends when its connection does (test/liveness.test.ts
// catches that).
import { constants, type ServerHttp2Stream } from "node:http2";

export function resetStream(call: object): boolean {
  const stream = findStream(call);
  if (!stream || stream.closed || stream.destroyed) return false;
  stream.close(constants.NGHTTP2_CANCEL);
  return true;
}

function findStream(call: object): ServerHttp2Stream | undefined {
  let node: unknown = (call as { call?: unknown }).call;
  for (let depth = 0; depth < 8 && node && typeof node === "object"; depth++) {
    const stream = (node as { stream?: unknown }).stream;
    if (stream && typeof (stream as ServerHttp2Stream).close === "function" && "rstCode" in (stream as object)) return stream as ServerHttp2Stream;
    node = (node as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}
