#!/usr/bin/env node
// `npx ice-test …` in a clone runs the sources as they are now, through tsx's loader in this same
// process (signals reach the program; nothing is left behind). A deployment copies the bundle or
// the executable that `npm run build` makes instead (README: Deployment).
import { register } from "tsx/esm/api";

register();
await import("../cli/ice-test.ts");
