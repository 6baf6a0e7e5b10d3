// The per-pair table from werift's check list: what each pair's state and counters mean, and a
// successful run that shows no failure which did not happen.
import t from "tap";
import { CandidatePairState, type RTCPeerConnection } from "werift";
import { describePairTable, pairTable } from "../core/pair-table.ts";

interface FakePair {
  state: CandidatePairState;
  requestsSent?: number;
  retransmissionsSent?: number;
  responsesReceived?: number;
  nominated?: boolean;
  rtt?: number;
  remotePort?: number;
}

/** A peer connection whose ICE agent has exactly these pairs (the fields pairTable reads). */
function peerWith(pairs: FakePair[], nominatedIndex?: number): RTCPeerConnection {
  const checkList = pairs.map((p, i) => ({
    state: p.state,
    requestsSent: p.requestsSent ?? 0,
    retransmissionsSent: p.retransmissionsSent ?? 0,
    responsesReceived: p.responsesReceived ?? 0,
    nominated: p.nominated ?? false,
    rtt: p.rtt,
    localCandidate: { type: "host", transport: "UDP", host: "10.1.0.2", port: 5000 },
    remoteCandidate: { type: i === 0 ? "srflx" : "host", transport: "UDP", host: "198.51.100.12", port: p.remotePort ?? 6000 + i },
  }));
  const connection = { checkList, nominated: nominatedIndex === undefined ? undefined : checkList[nominatedIndex] };
  return { iceTransports: [{ connection }] } as unknown as RTCPeerConnection;
}

t.test("a successful run: pairs removed unchecked once one was selected are not-checked, not failed", async (t) => {
  const pc = peerWith(
    [
      { state: CandidatePairState.SUCCEEDED, requestsSent: 2, responsesReceived: 2, nominated: true, rtt: 0.0123 },
      // werift marks waiting and frozen pairs failed when it nominates (RFC 8445 §8.1.2 removes them).
      { state: CandidatePairState.FAILED },
      { state: CandidatePairState.FAILED },
    ],
    0,
  );
  const rows = pairTable(pc);
  t.match(rows[0], { state: "succeeded", nominated: true, checksSent: 2, checksAnswered: 2, rttMs: 12.3 }, "the selected pair, with its round trip");
  t.notOk(rows[0]!.failure, "the selected pair has no failure");
  for (const row of rows.slice(1)) {
    t.equal(row.state, "not-checked", "a pair removed before its turn is not-checked");
    t.equal(row.failure, undefined, "and carries no failure");
    t.equal(row.skipped, "another pair was selected first", "it says why it was skipped");
  }
  const text = describePairTable(rows).join("\n");
  t.notMatch(text, /fail/, `the printed table shows no failure:\n${text}`);
  t.match(text, /not checked: another pair was selected first/, "the skipped pairs say why");
});

t.test("failures that happened are still failures, on a success as on a failure", async (t) => {
  const rows = pairTable(
    peerWith(
      [
        { state: CandidatePairState.SUCCEEDED, requestsSent: 1, responsesReceived: 1, nominated: true },
        { state: CandidatePairState.FAILED, requestsSent: 1, retransmissionsSent: 6 },
        { state: CandidatePairState.FAILED, requestsSent: 1, responsesReceived: 1 },
        { state: CandidatePairState.IN_PROGRESS, requestsSent: 1, retransmissionsSent: 1 },
      ],
      0,
    ),
  );
  t.match(rows[1], { state: "failed", checksSent: 7, checksAnswered: 0, failure: "no answer (timeout)" }, "checks sent and never answered: a timeout");
  t.match(rows[2], { state: "failed", checksAnswered: 1, failure: "answered, then refused or answered from another address" }, "answered yet failed");
  t.match(rows[3], { state: "in-progress", checksSent: 2 }, "a pair still being checked");
  t.equal(rows[3]!.failure, undefined, "is no failure");
});

t.test("a failed run: a pair never checked before ICE ended is not-checked, and says so", async (t) => {
  const rows = pairTable(peerWith([{ state: CandidatePairState.FAILED, requestsSent: 3, retransmissionsSent: 4 }, { state: CandidatePairState.FAILED }]));
  t.equal(rows[0]!.failure, "no answer (timeout)", "the checked pair timed out");
  t.match(rows[1], { state: "not-checked", skipped: "ICE ended before its turn" }, "the other never had its turn");
  t.same(pairTable(undefined), [], "no peer connection: no rows");
  t.same(describePairTable([]), ["  (no candidate pairs)"], "and the table says so");
});
