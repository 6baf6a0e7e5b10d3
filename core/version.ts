// Kept equal to package.json by test/version.test.ts; a constant because Deno and Node load JSON
// modules differently.
export const VERSION = "0.1.0";
export const WEBRTC_STACK = "werift 0.24.4";
