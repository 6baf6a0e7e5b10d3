// dist/ice-test.mjs carries the program in a block comment: scripts/comment-safe.ts takes `*/` out
// of it without changing what the program does.
import t from "tap";
import { runInNewContext } from "node:vm";
import { withoutCommentEnd } from "../scripts/comment-safe.ts";

t.test("strings and regular expressions keep their meaning without */", async (t) => {
  const code = String.raw`({ glob: "src/**/*.ts", parts: "a, b,c".split(/,\s*/), slashes: /^\s*\*?\/*/.exec("*//x")[0], set: /[*/]+/.test("*/"), star: /a\*/.test("a*"), plain: 2*3/2 })`;
  const safe = withoutCommentEnd(code);
  t.notOk(safe.includes("*/"), `no */ left: ${safe}`);
  t.same(runInNewContext(safe), runInNewContext(code), "every value is the same as the original's");
});

t.test("code without */ is returned as it is", async (t) => {
  const code = "const a = 1 / 2;";
  t.equal(withoutCommentEnd(code), code, "nothing to rewrite");
});

t.test("a */ outside a literal is refused", async (t) => {
  t.throws(() => withoutCommentEnd("const a = 1; /* note */ const b = 2;"), /outside a string or regular expression/, "a comment is refused");
  t.throws(() => withoutCommentEnd("const a = `x*/y`;"), /outside a string or regular expression/, "a template literal is refused");
});
