// An esbuild plugin for the Node program: @shinyoshiaki/binary-data (werift's packet codec) builds
// 142 small functions from source text with `generate-function` (`new Function`) when it loads, at
// every start: ~5 ms of compiling, and code that no V8 code cache can hold. The build loads the
// package once with a recording `generate-function`, and the program gets each of those functions
// as ordinary code (compiled with the rest, kept in the code cache). A function the table does not
// hold (another version of the package) is still made from its text, as before.
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";
import type { Plugin } from "esbuild";

const NAMESPACE = "precompiled-generators";

/**
 * Loads binary-data with a `generate-function` that records what `toFunction` compiles: the names
 * of the scope's variables (in the order `toFunction` passes them) and the function's text.
 */
const RECORDER = `
const Module = require("node:module");
const load = Module._load;
const made = [];
Module._load = function (request, ...rest) {
  const loaded = load.call(this, request, ...rest);
  if (request !== "generate-function") return loaded;
  return Object.assign(function (...args) {
    const line = loaded(...args);
    const toFunction = line.toFunction;
    line.toFunction = function (scope) {
      made.push({ names: Object.keys(scopeOf(line, scope)), text: line.toString() });
      return toFunction.call(this, scope);
    };
    return line;
  }, loaded);
};
${scopeOf.toString()}
require(process.argv[1]);
process.stdout.write(JSON.stringify(made));
`;

/** The variables `toFunction` passes, in its order: its argument's, then the generator's own. */
function scopeOf(line: { scope: Record<string, unknown> }, scope?: Record<string, unknown>): Record<string, unknown> {
  const all = { ...scope };
  for (const name of Object.keys(line.scope)) if (!all[name]) all[name] = line.scope[name];
  return all;
}

export function precompiledGenerators(root: string): Plugin {
  const binaryData = join(root, "node_modules/@shinyoshiaki/binary-data");
  const generateFunction = createRequire(join(binaryData, "package.json")).resolve("generate-function");
  return {
    name: NAMESPACE,
    setup(build) {
      build.onResolve({ filter: /^generate-function$/ }, (args) => (args.importer.startsWith(binaryData) ? { path: generateFunction, namespace: NAMESPACE } : undefined));
      build.onLoad({ filter: /.*/, namespace: NAMESPACE }, () => {
        const made = JSON.parse(execFileSync(process.execPath, ["-e", RECORDER, binaryData], { encoding: "utf8" })) as { names: string[]; text: string }[];
        if (made.length === 0) throw new Error("binary-data generated no functions at load: the precompiled table would be empty");
        const entries = made.map(({ names, text }) => `[${JSON.stringify(`${names.join(",")}|${text}`)},function(${names.join(",")}){return (${text})}]`);
        return {
          contents: `"use strict";
const generate = require(${JSON.stringify(generateFunction)});
const made = new Map([${entries.join(",\n")}]);
${scopeOf.toString()}
module.exports = Object.assign(function precompiled(...args) {
  const line = generate(...args);
  const toFunction = line.toFunction;
  line.toFunction = function (scope) {
    const all = scopeOf(line, scope);
    const make = made.get(Object.keys(all).join(",") + "|" + line.toString());
    return make ? make(...Object.values(all)) : toFunction.call(this, scope);
  };
  return line;
}, generate);
`,
          resolveDir: root,
          loader: "js",
        };
      });
    },
  };
}
