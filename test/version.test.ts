import t from "tap";
import { readFileSync } from "node:fs";
import { VERSION, WEBRTC_STACK } from "../core/version.ts";

const read = (path: string) => JSON.parse(readFileSync(new URL(path, import.meta.url), "utf8")) as { version: string };

t.test("the version the peers report is the package's", async (t) => {
  t.equal(VERSION, read("../package.json").version, "core/version.ts VERSION equals package.json version");
  t.equal(WEBRTC_STACK, `werift ${read("../node_modules/werift/package.json").version}`, "WEBRTC_STACK names the installed werift");
});
