// Regressions in werift's SCTP and data channel setup (fixed by patches/werift+0.24.4.patch),
// between two werift peers through a UDP relay.
import t from "tap";
import { connectPair, UdpRelay, within, type Side } from "./fixtures/werift-pair.ts";

const LIMIT_MS = 15_000;
const ACK_DELAY_MS = 600;

t.test("the opener's ordered data channel opens when its DATA_CHANNEL_OPEN is sent, not a round trip later at the ACK", async (t) => {
  const r = new UdpRelay();
  await r.start();
  // From the moment the answerer's channel exists (it has just read the OPEN and is about to
  // send the ACK), everything it sends is held back: an opener waiting for the ACK waits too.
  let holdAnswerer = false;
  r.rule = (from: Side) => (from === "answerer" && holdAnswerer ? [ACK_DELAY_MS] : [0]);
  const pair = await connectPair(t, { relay: r });
  let answererOpenAt = 0;
  pair.answerer.onDataChannel.subscribe(() => {
    holdAnswerer = true;
    answererOpenAt = performance.now();
  });
  let offererOpenAt = 0;
  const { offerer, answerer } = await within(
    pair.channels.then((channels) => ((offererOpenAt = performance.now()), channels)),
    LIMIT_MS,
    "both channels opening",
  );
  t.ok(offererOpenAt - answererOpenAt < ACK_DELAY_MS / 2, `the opener was open ${Math.round(offererOpenAt - answererOpenAt)} ms after the other end, not after the held-back ACK`);
  const received = new Promise<string>((resolve) => answerer.onMessage.subscribe((data) => resolve(data.toString())));
  offerer.send("first");
  t.equal(await within(received, LIMIT_MS, "the first message arriving"), "first", "a message sent at once after open arrives");
});
