// One command-line parser for the server and the peer, driven by a table of flags. It reads the old
// Go tool's style (`-port 443`, `-with-turn=false`) and GNU style (`--port 443`, `--port=443`,
// `--no-stun`), falls back to ICE_TEST_<FLAG> variables, and renders --help from the same table,
// so adding a flag is one entry. Hand-written rather than yargs-parser: yargs turns `--no-stun`
// into `stun=false` but `-no-stun` into `no-stun`, and hides the raw token a "did you mean" needs.

export type FlagKind = "string" | "boolean" | "list";

export interface FlagSpec {
  /** Long name without dashes: "signaling-addr". */
  readonly name: string;
  readonly kind: FlagKind;
  /** Placeholder in --help: "URL", "N", "FILE". */
  readonly value?: string;
  /** One line, or several separated by "\n". */
  readonly help: string;
  /** Shown as [default: …]; the parser does not apply it. */
  readonly default?: string;
  /** false: no ICE_TEST_<FLAG> variable (e.g. --help). */
  readonly env?: false;
  /** Further variables mentioned in --help, e.g. TURN_PASSWORD (the caller reads them). */
  readonly alsoEnv?: readonly string[];
  readonly aliases?: readonly string[];
  /** --help heading this flag goes under; flags without one go under "Options". */
  readonly section?: string;
  /** Left column in --help when the default "--name VALUE" does not say enough. */
  readonly synopsis?: string;
  /** Parsed but not listed on its own in --help (another flag's synopsis shows it). */
  readonly hidden?: boolean;
}

export interface CommandSpec {
  /** What follows the program name on the Usage line. */
  readonly usage: string;
  /** A paragraph under the Usage line. */
  readonly about: string;
  readonly flags: readonly FlagSpec[];
  /** Closing paragraph (exit codes, examples). */
  readonly footer?: string;
  /** The flag a stray word was probably meant for ("8095" → "port"), for the hint. */
  readonly guessFlag?: (word: string) => string | undefined;
}

/** A bad command line; `message` is one line, `hints` say what to type instead. */
export class UsageError extends Error {
  override readonly name = "UsageError";
  readonly hints: string[];

  constructor(message: string, hints: string[] = []) {
    super(message);
    this.hints = hints;
  }
}

export type Env = (name: string) => string | undefined;

/** A value and where it came from, so a message names what the user actually typed. */
export interface Given<T> {
  readonly value: T;
  /** "--port" or "ICE_TEST_PORT". */
  readonly name: string;
}

const STANDARD_FLAGS: readonly FlagSpec[] = [
  { name: "help", kind: "boolean", help: "this text", aliases: ["h"], env: false },
  { name: "version", kind: "boolean", help: "print the version and exit", env: false },
];

export function envName(flag: string): string {
  return `ICE_TEST_${flag.toUpperCase().replace(/-/g, "_")}`;
}

/** Flag values first, then ICE_TEST_* variables. */
export class ParsedFlags {
  constructor(
    private readonly values: ReadonlyMap<string, string | boolean | string[]>,
    private readonly specs: ReadonlyMap<string, FlagSpec>,
    private readonly env: Env,
  ) {}

  get help(): boolean {
    return this.values.get("help") === true;
  }

  get version(): boolean {
    return this.values.get("version") === true;
  }

  /** The last value given (as with Go's flag package), else ICE_TEST_<FLAG>, else `fallbackEnv`. */
  get(flag: string, ...fallbackEnv: string[]): Given<string> | undefined {
    const value = this.values.get(this.known(flag).name);
    if (Array.isArray(value)) return { value: value.at(-1)!, name: `--${flag}` };
    if (typeof value === "string") return { value, name: `--${flag}` };
    for (const name of [...this.envNames(flag), ...fallbackEnv]) {
      const fromEnv = this.env(name);
      if (fromEnv !== undefined && fromEnv !== "") return { value: fromEnv, name };
    }
    return undefined;
  }

  /** Repeatable flags; in the environment, a comma-separated list. */
  list(flag: string): Given<string[]> | undefined {
    const value = this.values.get(this.known(flag).name);
    if (Array.isArray(value)) return { value, name: `--${flag}` };
    for (const name of this.envNames(flag)) {
      const fromEnv = this.env(name);
      if (fromEnv === undefined || fromEnv.trim() === "") continue;
      return { value: fromEnv.split(",").map((part) => part.trim()).filter(Boolean), name };
    }
    return undefined;
  }

  /** undefined when neither the command line nor the environment says. */
  bool(flag: string): Given<boolean> | undefined {
    const value = this.values.get(this.known(flag).name);
    if (typeof value === "boolean") return { value, name: `--${flag}` };
    for (const name of this.envNames(flag)) {
      const fromEnv = this.env(name)?.trim().toLowerCase();
      if (fromEnv === undefined || fromEnv === "") continue;
      const parsed = parseBoolean(fromEnv);
      if (parsed === undefined) throw new UsageError(`Invalid ${name} "${fromEnv}": use 1 or 0 (true or false)`);
      return { value: parsed, name };
    }
    return undefined;
  }

  /** True only when set to true. */
  on(flag: string): boolean {
    return this.bool(flag)?.value === true;
  }

  private known(flag: string): FlagSpec {
    const spec = this.specs.get(flag);
    if (!spec) throw new Error(`flag --${flag} is not in the table`);
    return spec;
  }

  private envNames(flag: string): string[] {
    return this.known(flag).env === false ? [] : [envName(flag)];
  }
}

function parseBoolean(text: string): boolean | undefined {
  const lower = text.toLowerCase();
  if (["1", "true", "yes", "on", "t"].includes(lower)) return true;
  if (["0", "false", "no", "off", "f"].includes(lower)) return false;
  return undefined;
}

export interface ParseContext {
  /** How the user runs this program, for messages: "ice-test server" or "npm run server --". */
  readonly program: string;
  /**
   * npm's own environment, to tell when flags were swallowed by `npm run X --flag` (no `--`):
   * npm keeps them as npm_config_<flag> and passes only their values on.
   */
  readonly npmScript?: string;
}

export function parseFlags(spec: CommandSpec, argv: readonly string[], env: Env, context: ParseContext): ParsedFlags {
  const specs = byName([...spec.flags, ...STANDARD_FLAGS]);
  const values = new Map<string, string | boolean | string[]>();
  const stray: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const flag = /^--?([A-Za-z][\w.-]*)(?:=([\s\S]*))?$/.exec(arg);
    if (!flag) {
      stray.push(arg);
      continue;
    }
    const [, name = "", inline] = flag;
    const known = specs.get(name);
    if (!known) {
      const negated = /^no-(.+)$/.exec(name)?.[1];
      const positive = negated === undefined ? undefined : specs.get(negated);
      if (positive?.kind === "boolean" && inline === undefined) {
        values.set(positive.name, false);
        continue;
      }
      throw unknownFlag(arg, name, specs);
    }
    if (known.kind === "boolean") {
      const value = inline === undefined ? true : parseBoolean(inline);
      if (value === undefined) throw new UsageError(`--${known.name} is true or false, not "${inline}"`);
      values.set(known.name, value);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined || isKnownFlag(next, specs)) throw new UsageError(`--${known.name} needs a value${known.value ? ` (${known.value})` : ""}`);
      value = next;
      i++;
    }
    if (value === "") throw new UsageError(`--${known.name} needs a value${known.value ? ` (${known.value})` : ""}`);
    const previous = values.get(known.name);
    values.set(known.name, known.kind === "list" || Array.isArray(previous) ? [...(Array.isArray(previous) ? previous : []), value] : value);
  }
  const swallowed = swallowedByNpm(spec, env, context);
  if (stray.length > 0 || (swallowed.length > 0 && values.size === 0)) throw strayArguments(spec, stray, swallowed, context);
  return new ParsedFlags(values, specs, env);
}

function byName(flags: readonly FlagSpec[]): Map<string, FlagSpec> {
  const map = new Map<string, FlagSpec>();
  for (const flag of flags) {
    map.set(flag.name, flag);
    for (const alias of flag.aliases ?? []) map.set(alias, flag);
  }
  return map;
}

function isKnownFlag(arg: string, specs: ReadonlyMap<string, FlagSpec>): boolean {
  const name = /^--?([A-Za-z][\w.-]*)(?:=|$)/.exec(arg)?.[1];
  return name !== undefined && (specs.has(name) || specs.get(name.replace(/^no-/, ""))?.kind === "boolean");
}

function unknownFlag(arg: string, name: string, specs: ReadonlyMap<string, FlagSpec>): UsageError {
  const guess = closest(name, [...specs.keys()].filter((key) => key.length > 1));
  const dashes = arg.startsWith("--") ? "--" : "-";
  return new UsageError(`Unknown flag ${dashes}${name}${guess ? `: did you mean --${guess}?` : ""}`);
}

/**
 * Words that are not flags. Under `npm run X --port 443` (no `--`) npm keeps `--port` as its own
 * setting (npm_config_port) and passes on only "443": say so, and show the line that works.
 */
function strayArguments(spec: CommandSpec, stray: readonly string[], swallowed: readonly FlagSpec[], context: ParseContext): UsageError {
  const words = stray.map((word) => `"${word}"`).join(" ");
  const guessed = stray.map((word) => (spec.guessFlag?.(word) ? `--${spec.guessFlag(word)} ${word}` : word)).join(" ");
  if (context.npmScript === undefined) {
    const guess = guessed !== stray.join(" ") ? `: did you mean ${guessed}?` : ": flags start with - or --";
    return new UsageError(`Unexpected argument ${words}${guess}`);
  }
  const names = swallowed.map((flag) => `--${flag.name}`).join(" ");
  const what = swallowed.length === 0 ? `Unexpected argument ${words}` : `npm kept ${names} for itself${stray.length > 0 ? ` and passed on only ${words}` : ""}`;
  const args = swallowed.length === 0 ? guessed : npmExample(stray, swallowed);
  return new UsageError(`${what}: flags reach the program only after "--"`, [`try: npm run ${context.npmScript} -- ${args}`]);
}

function swallowedByNpm(spec: CommandSpec, env: Env, context: ParseContext): FlagSpec[] {
  if (context.npmScript === undefined) return [];
  return [...spec.flags, ...STANDARD_FLAGS].filter((flag) => env(`npm_config_${flag.name.replace(/-/g, "_")}`) !== undefined);
}

/** The swallowed flags with the stray values given back to them, in order, where they fit. */
function npmExample(stray: readonly string[], swallowed: readonly FlagSpec[]): string {
  const values = [...stray];
  const takers = swallowed.filter((flag) => flag.kind !== "boolean").length;
  const words = swallowed.map((flag) => {
    if (flag.kind === "boolean") return `--${flag.name}`;
    const value = takers === stray.length ? values.shift() : flag.value ?? "VALUE";
    return `--${flag.name} ${value}`;
  });
  return words.join(" ");
}

/** The candidate nearest to `typed`, if it is near enough to be a typo; a unique prefix also counts. */
export function closest(typed: string, candidates: readonly string[]): string | undefined {
  const lower = typed.toLowerCase();
  const prefixed = candidates.filter((candidate) => candidate.startsWith(lower));
  if (prefixed.length === 1) return prefixed[0];
  let best: { name: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate);
    if (!best || distance < best.distance) best = { name: candidate, distance };
  }
  if (!best) return undefined;
  return best.distance <= Math.max(1, Math.floor(best.name.length / 3)) ? best.name : undefined;
}

/** Levenshtein distance, with a transposition counting as one edit (Damerau, restricted). */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = best;
    }
  }
  return rows[a.length]![b.length]!;
}

const HELP_COLUMN = 26;

/** --help, from the table: sections in the order their first flag appears. */
export function renderHelp(spec: CommandSpec, program: string): string {
  const sections = new Map<string, FlagSpec[]>();
  for (const flag of [...spec.flags, ...STANDARD_FLAGS].filter((flag) => !flag.hidden)) {
    const section = flag.section ?? "Options";
    sections.set(section, [...(sections.get(section) ?? []), flag]);
  }
  const blocks = [`Usage: ${program} ${spec.usage}`, spec.about];
  for (const [title, flags] of sections) blocks.push([`${title}:`, ...flags.map(renderFlag)].join("\n"));
  blocks.push(
    "Flags take one or two dashes, and a value after a space or '=': -port 443, --port=443,\n-with-turn=false. Every flag can also be set as ICE_TEST_<FLAG> (ICE_TEST_PORT=8443,\nICE_TEST_INSECURE=1); the command line wins.",
  );
  if (spec.footer) blocks.push(spec.footer);
  return blocks.join("\n\n");
}

function renderFlag(flag: FlagSpec): string {
  const left = flag.synopsis ?? [`--${flag.name}${flag.value ? ` ${flag.value}` : ""}`, ...(flag.aliases ?? []).map((alias) => `-${alias}`)].join(", ");
  const notes = [flag.default !== undefined ? `[default: ${flag.default}]` : "", flag.alsoEnv?.length ? `[env: ${flag.alsoEnv.join(", ")}]` : ""].filter(Boolean).join(" ");
  const lines = flag.help.split("\n");
  if (notes) lines[lines.length - 1] = `${lines.at(-1)} ${notes}`;
  const indent = " ".repeat(HELP_COLUMN + 2);
  const first = left.length < HELP_COLUMN ? `  ${left.padEnd(HELP_COLUMN)}${lines[0]}` : `  ${left}\n${indent}${lines[0]}`;
  return [first, ...lines.slice(1).map((line) => `${indent}${line}`)].join("\n");
}

/**
 * How the user started this program, for messages and --help. Under `npm run server` (a script
 * whose command runs `entry`) that is "npm run server --"; any other npm script that happens to
 * start us (`npm test`) does not count.
 */
export function programName(env: Env, fallback: string, entry: RegExp): { program: string; npmScript?: string } {
  const script = env("npm_lifecycle_event");
  const command = env("npm_lifecycle_script");
  if (!script || !command || !entry.test(command)) return { program: fallback };
  return { program: `npm run ${script} --`, npmScript: script };
}
