// What Ctrl-C (or SIGTERM) ends, said the way the run stood: waiting, connecting, or exchanging.
// The exit code stays 130 (128 + SIGINT, what shells expect of an interrupted program) even when
// the channel was open: the run did not finish, and scripts must be able to tell. The summary says
// "connected YES, interrupted" with the round trips done so far.
import { PeerFailure } from "./failure.ts";
import type { Phase } from "./diagnose.ts";

const WHILE: Record<Phase, string> = {
  "waiting-for-peer": "while waiting for a peer",
  negotiating: "while exchanging offer and answer",
  ice: "during ICE checks",
  dtls: "during the DTLS handshake",
  "data-channel": "while the data channel was opening",
  exchange: "during the ping/pong exchange",
};

export function interrupted(phase: Phase, channelOpened: boolean, roundTrips: number): PeerFailure {
  const what = channelOpened ? `after the data channel opened, with ${roundTrips} round trip${roundTrips === 1 ? "" : "s"} done` : WHILE[phase];
  return new PeerFailure("interrupted", "interrupted", `Interrupted ${what}`);
}
