// scripts/precompiled-generators.ts: the Node program gets binary-data's generated functions as
// ordinary code. The bundled package must compile nothing from text at load and encode and decode
// exactly as the package does on its own.
import t from "tap";
import { createRequire } from "node:module";
import { runInNewContext } from "node:vm";
import { build } from "esbuild";
import { precompiledGenerators } from "../scripts/precompiled-generators.ts";
import { ROOT } from "../scripts/peer-process.ts";

type BinaryData = {
  types: Record<string, unknown> & { uint8: unknown; uint16be: unknown; uint32le: unknown; int24be: unknown; doublebe: unknown; buffer: (length: unknown) => unknown };
  encode: (value: unknown, schema: unknown) => { slice: () => Buffer };
  decode: (buffer: Buffer, schema: unknown) => unknown;
};

const entry = `${ROOT}/node_modules/@shinyoshiaki/binary-data`;

t.test("bundled binary-data compiles no function from text and encodes and decodes as the package does", async (t) => {
  const result = await build({ entryPoints: [entry], bundle: true, platform: "node", format: "cjs", write: false, logLevel: "silent", plugins: [precompiledGenerators(ROOT)] });
  let compiled = 0;
  const CountingFunction = new Proxy(Function, {
    apply: (target, self, args: string[]) => (compiled++, Reflect.apply(target, self, args)),
    construct: (target, args: string[]) => (compiled++, Reflect.construct(target, args)),
  });
  const module = { exports: {} as BinaryData };
  runInNewContext(result.outputFiles[0]!.text, { module, exports: module.exports, require: createRequire(entry), Function: CountingFunction, Buffer, Symbol });
  t.equal(compiled, 0, "no generated function is compiled from its text at load");
  const bundled = module.exports;
  const original = createRequire(import.meta.url)(entry) as BinaryData;
  const schemaOf = (lib: BinaryData) => ({ a: lib.types.uint8, b: lib.types.uint16be, c: lib.types.uint32le, d: lib.types.int24be, e: lib.types.doublebe, f: lib.types.buffer(3) });
  const value = { a: 7, b: 0xbeef, c: 0xdeadbeef, d: -123456, e: Math.PI, f: Buffer.from([1, 2, 3]) };
  const bytes = bundled.encode(value, schemaOf(bundled)).slice();
  t.same(bytes, original.encode(value, schemaOf(original)).slice(), "the same bytes as the package's own encoder");
  t.same(bundled.decode(bytes, schemaOf(bundled)), original.decode(bytes, schemaOf(original)), "the same value back as the package's own decoder");
});
