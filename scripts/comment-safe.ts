// dist/ice-test.mjs carries the program inside a block comment (scripts/build.ts says why), so the
// program must not contain `*/`. In esbuild's output it appears inside string and regular
// expression literals (globs such as "src/**/*.ts" in a bundled package.json, `/,\s*/`): this
// rewrites those literals into equivalent ones without it, and refuses any other `*/`.
import ts from "typescript";

export function withoutCommentEnd(code: string): string {
  if (!code.includes("*/")) return code;
  const file = ts.createSourceFile("program.js", code, ts.ScriptTarget.Latest, false, ts.ScriptKind.JS);
  const edits: { start: number; end: number; text: string }[] = [];
  const visit = (node: ts.Node): void => {
    const start = node.getStart(file);
    const text = code.slice(start, node.end);
    if (!text.includes("*/")) return;
    if (ts.isStringLiteral(node)) {
      edits.push({ start, end: node.end, text: text.replaceAll("*/", "*\\/") });
    } else if (ts.isRegularExpressionLiteral(node)) {
      // `\/` matches "/" in any regular expression; a pattern that ends in `*` gets an empty group
      // before its closing slash: the same matches and flags, only its .source differs.
      const close = text.lastIndexOf("/");
      const pattern = text.slice(0, close).replaceAll("*/", "*\\/");
      edits.push({ start, end: node.end, text: (pattern.endsWith("*") ? `${pattern}(?:)` : pattern) + text.slice(close) });
    } else if (node.getChildCount(file) === 0) {
      throw new Error(`the program has "*/" outside a string or regular expression at ${start}: ${text.slice(0, 80)}`);
    } else {
      node.forEachChild(visit);
    }
  };
  file.forEachChild(visit);
  let out = code;
  for (const edit of edits.sort((a, b) => b.start - a.start)) out = out.slice(0, edit.start) + edit.text + out.slice(edit.end);
  if (out.includes("*/")) throw new Error(`the program has "*/" outside a string or regular expression at ${out.indexOf("*/")}`);
  return out;
}
