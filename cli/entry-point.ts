// Whether a main module was started as the program (`node --import tsx server/main.ts`) or loaded
// by the ice-test dispatcher. In a bundle every module shares the bundle's URL, so comparing URLs
// alone would start both programs: the dispatcher says first that it is in charge.
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";

let dispatched = false;

/** Called by the dispatcher before it loads a program's main module. */
export function dispatching(): void {
  dispatched = true;
}

export function isEntryPoint(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (dispatched || !script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}

/** Exits once stdout is flushed: werift leaves timers and sockets behind after close. */
export function exitWhenFlushed(code: number): void {
  process.stdout.write("", () => process.exit(code));
}
