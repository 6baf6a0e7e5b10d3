// The one place where failures become gRPC statuses. Handlers throw SignalingError with a message a
// person can act on; anything else is a bug, so the client sees a generic INTERNAL and the details
// go to the log only (they may name files, hosts or internals).
import { Metadata, status, type ServerErrorResponse } from "@grpc/grpc-js";

export class SignalingError extends Error {
  override readonly name = "SignalingError";

  constructor(
    readonly code: status,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const invalidArgument = (message: string) => new SignalingError(status.INVALID_ARGUMENT, message);
export const unauthenticated = (message: string) => new SignalingError(status.UNAUTHENTICATED, message);
export const notFound = (message: string) => new SignalingError(status.NOT_FOUND, message);
export const alreadyExists = (message: string) => new SignalingError(status.ALREADY_EXISTS, message);
export const resourceExhausted = (message: string) => new SignalingError(status.RESOURCE_EXHAUSTED, message);
export const aborted = (message: string) => new SignalingError(status.ABORTED, message);
export const permissionDenied = (message: string) => new SignalingError(status.PERMISSION_DENIED, message);
export const outOfRange = (message: string) => new SignalingError(status.OUT_OF_RANGE, message);
export const unavailable = (message: string) => new SignalingError(status.UNAVAILABLE, message);

export const INTERNAL_MESSAGE = "Internal server error";

/**
 * Maps anything thrown to the status the client sees. `onUnexpected` receives every error that is
 * not a SignalingError, so the caller can log it in full.
 */
export function toServiceError(err: unknown, onUnexpected: (err: unknown) => void = () => {}): ServerErrorResponse {
  if (err instanceof SignalingError) return serviceError(err.code, err.message);
  onUnexpected(err);
  return serviceError(status.INTERNAL, INTERNAL_MESSAGE);
}

// An Error (not a plain object) because grpc-js streams are ended by emitting `error` with it.
function serviceError(code: status, details: string): ServerErrorResponse {
  return Object.assign(new Error(details), { code, details, metadata: new Metadata() });
}
