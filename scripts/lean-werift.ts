// An esbuild plugin: werift's import of @peculiar/x509 gets scripts/werift-x509.ts, the little of
// it werift uses (why: see that file). Other importers (the server's `selfsigned`) keep the library.
import { join, sep } from "node:path";
import type { Plugin } from "esbuild";

export function leanWerift(root: string): Plugin {
  const werift = `${sep}node_modules${sep}werift${sep}`;
  return {
    name: "lean-werift",
    setup(build) {
      build.onResolve({ filter: /^@peculiar\/x509$/ }, (args) => (args.importer.includes(werift) ? { path: join(root, "scripts/werift-x509.ts") } : undefined));
    },
  };
}
