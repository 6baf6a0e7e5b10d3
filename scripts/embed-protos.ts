// An esbuild plugin that carries the server's .proto files inside the bundle, so health and
// reflection work from dist/ice-test.mjs and dist/ice-test with no files beside them.
//
// The code that loads them (grpc-health-check, @grpc/reflection, server/reflection.ts) finds them
// next to itself, through __dirname or import.meta.url, which in a bundle name the bundle (or
// nothing at all, in an ES module). So, in the bundle only:
//  - those modules see themselves at their path under a virtual root (VIRTUAL_ROOT/node_modules/…),
//    so every path they compute is a fixed, absolute one;
//  - the .proto texts are registered under those paths with protobufjs.common(), which
//    Root.load consults before the disk (it already serves google/protobuf/*.proto that way);
//  - proto-loader's include-path lookup, which checks the disk with fs.accessSync, accepts a path
//    protobufjs has registered.
// The same texts then go through the same proto-loader calls as unbundled: the descriptors match.
// Each rewrite must find its target, so a dependency update that moves one fails the build here.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { pathToFileURL } from "node:url";
import type { Plugin } from "esbuild";

const VIRTUAL_ROOT = "/ice-test-embedded";

/** Folders whose .proto files (recursively) are embedded, relative to the project root. */
const PROTO_DIRS = ["proto", "node_modules/grpc-health-check/proto", "node_modules/@grpc/reflection/build/proto/grpc"];

/** Modules that locate .proto files relative to themselves. */
const LOCATING_MODULES = [
  "server/reflection.ts",
  "node_modules/grpc-health-check/build/src/health.js",
  "node_modules/@grpc/reflection/build/src/implementations/reflection-v1.js",
  "node_modules/@grpc/reflection/build/src/implementations/reflection-v1alpha.js",
];

// grpc-health-check and @grpc/reflection each bring their own copy of proto-loader: patch every
// copy (all share the one protobufjs, so one registry).
const PROTO_LOADER_UTIL = /[\\/]@grpc[\\/]proto-loader[\\/]build[\\/]src[\\/]util\.js$/;
const REGISTRY = "embed-protos:registry";
const INCLUDE_CHECK = "fs.accessSync(fullPath, fs.constants.R_OK);";

export function embedProtos(root: string): Plugin {
  const virtual = (path: string) => `${VIRTUAL_ROOT}/${relative(root, path).split(sep).join("/")}`;
  const locating = new Set(LOCATING_MODULES.map((path) => join(root, path)));
  // Only the files rewritten here: esbuild then skips this plugin for every other module.
  const filter = new RegExp(`(${LOCATING_MODULES.map((path) => escapeRegExp(path.split("/").join(sep))).join("|")})$|${PROTO_LOADER_UTIL.source}`);
  return {
    name: "embed-protos",
    setup(build) {
      // One module registers the texts, however many copies of proto-loader require it.
      build.onResolve({ filter: new RegExp(`^${escapeRegExp(REGISTRY)}$`) }, () => ({ path: REGISTRY, namespace: "embed-protos" }));
      build.onLoad({ filter: /.*/, namespace: "embed-protos" }, () => {
        const register = PROTO_DIRS.flatMap((dir) => protoFiles(join(root, dir))).map((path) => `common(${JSON.stringify(virtual(path))}, ${JSON.stringify(readFileSync(path, "utf8"))});`);
        return { contents: `const { common } = require("protobufjs");\n${register.join("\n")}\n`, loader: "js", resolveDir: root };
      });
      build.onLoad({ filter }, (args) => {
        if (PROTO_LOADER_UTIL.test(args.path)) {
          const source = replaceOnce(args.path, readFileSync(args.path, "utf8"), INCLUDE_CHECK, `if (!(fullPath in Protobuf.common)) ${INCLUDE_CHECK}`);
          return { contents: `${source}\nrequire(${JSON.stringify(REGISTRY)});\n`, loader: "js" };
        }
        if (!locating.has(args.path)) return undefined;
        const self = virtual(args.path);
        const source = readFileSync(args.path, "utf8");
        const contents = source
          .replaceAll(/\b__dirname\b/g, JSON.stringify(self.slice(0, self.lastIndexOf("/"))))
          .replaceAll("import.meta.url", JSON.stringify(pathToFileURL(self).href));
        if (contents === source) throw new Error(`embed-protos: ${args.path} no longer uses __dirname or import.meta.url`);
        return { contents, loader: args.path.endsWith(".ts") ? "ts" : "js" };
      });
    },
  };
}

function protoFiles(dir: string): string[] {
  const files = readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((name) => name.endsWith(".proto"));
  if (files.length === 0) throw new Error(`embed-protos: no .proto files in ${dir}`);
  return files.map((name) => join(dir, name));
}

function replaceOnce(path: string, source: string, search: string, replacement: string): string {
  const at = source.indexOf(search);
  if (at < 0 || source.indexOf(search, at + 1) >= 0) throw new Error(`embed-protos: expected "${search}" once in ${path}`);
  return source.slice(0, at) + replacement + source.slice(at + search.length);
}

function escapeRegExp(text: string): string {
  return text.replaceAll(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
