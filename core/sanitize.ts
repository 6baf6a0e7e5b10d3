// Text from elsewhere (peer ids, bye reasons, text messages, candidates, server messages) is shown
// on a terminal: control characters in it could move the cursor, rewrite earlier lines, change the
// title or fake a report line. They are shown as escapes instead; everything else passes.

/** C0 controls (newlines included), DEL, C1 controls and the bidirectional overrides. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/** For text lines: "\x1b[2J" shows as the six characters `\x1b[2J`, not as a cleared screen. */
export function sanitize(text: string): string {
  return text.replace(CONTROL, (char) => {
    const code = char.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/**
 * For JSON lines: JSON.stringify escapes C0 controls but writes C1 and bidi controls raw; this
 * escapes them too, so the line stays the same JSON value and is safe to print.
 */
export function escapeJsonControls(json: string): string {
  return json.replace(CONTROL, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
