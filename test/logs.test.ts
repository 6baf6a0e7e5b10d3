// The server's log as collectors and people read it: one JSON object per line with a level and
// the event's fields, or one readable line; levels below --log-level are dropped.
import { openSync, closeSync, readFileSync } from "node:fs";
import { join } from "node:path";
import t, { type Test } from "tap";
import { logLine, logMessage, type Log } from "../server/log.ts";
import { createLogSink, type LogSinkOptions } from "../server/log-sink.ts";

function written(t: Test, options: Omit<LogSinkOptions, "fd">, write: (log: Log) => void): string[] {
  const file = join(t.testdir({}), "log");
  const fd = openSync(file, "w");
  write(createLogSink({ ...options, fd }));
  closeSync(fd);
  return readFileSync(file, "utf8").split("\n").filter(Boolean);
}

const AT = new Date("2026-11-24T13:55:00.123Z");

t.test("JSON lines carry the time, the level, the event, its fields and a message", async (t) => {
  const [send, internal] = written(t, { format: "json", level: "info" }, (log) => {
    log(logLine("send", { room: "lab", from: "alice", seq: 3n, kind: undefined }, AT));
    log(logLine("internal-error", { method: "/x/Y", error: "boom" }, AT));
  });
  t.same(JSON.parse(send!), { level: "info", time: "2026-11-24T13:55:00.123Z", event: "send", room: "lab", from: "alice", seq: 3, msg: "send" }, "a routine event is info; a bigint sequence is a number");
  t.equal(JSON.parse(internal!).level, "error", "an internal error is logged at level error");
});

t.test("a client's crafted value cannot forge a second line, in either format", async (t) => {
  const crafted = 'x\n{"level":"error","event":"forged"}';
  const json = written(t, { format: "json", level: "info" }, (log) => log(logLine("register", { peer: crafted }, AT)));
  t.equal(json.length, 1, "one JSON line");
  t.equal(JSON.parse(json[0]!).peer, crafted, "holding the value as sent");
  const text = written(t, { format: "text", level: "info" }, (log) => log(logLine("register", { peer: crafted }, AT)));
  t.same(text, ['2026-11-24T13:55:00.123Z info register peer="x\\n{\\"level\\":\\"error\\",\\"event\\":\\"forged\\"}"'], "one text line, the value quoted");
});

t.test("text lines read as time, level, event and fields; a message replaces the event", async (t) => {
  const lines = written(t, { format: "text", level: "info" }, (log) => {
    log(logLine("leave", { room: "lab", peer: "bob", reason: "left" }, AT));
    log({ ...logMessage("listening", "listening on 127.0.0.1:8443 (tls) stun udp/3478", { port: 8443 }), time: AT });
  });
  t.same(lines, ["2026-11-24T13:55:00.123Z info leave room=lab peer=bob reason=left", "2026-11-24T13:55:00.123Z info listening on 127.0.0.1:8443 (tls) stun udp/3478"], "readable lines");
});

t.test("--log-level drops what is below it", async (t) => {
  const lines = written(t, { format: "json", level: "warn" }, (log) => {
    log(logLine("send", {}, AT));
    log(logLine("shutdown-forced", { after: "5000ms" }, AT));
    log(logLine("internal-error", {}, AT));
  });
  t.same(lines.map((line) => JSON.parse(line).event), ["shutdown-forced", "internal-error"], "info is dropped at warn; warn and error stay");
});
