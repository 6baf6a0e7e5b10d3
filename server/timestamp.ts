// google.protobuf.Timestamp from a Date; ts-proto keeps its own converter private.
import type { Timestamp } from "../gen/google/protobuf/timestamp.ts";

export function toTimestamp(date: Date): Timestamp {
  const millis = date.getTime();
  const seconds = Math.floor(millis / 1000);
  return { seconds: BigInt(seconds), nanos: (millis - seconds * 1000) * 1_000_000 };
}
