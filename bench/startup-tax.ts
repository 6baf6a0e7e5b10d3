// Environment variables that slow every Node start-up and are not ice-test's doing. Node 20 reads and
// parses the file NODE_EXTRA_CA_CERTS names while the process starts (Node 22 waits for the first TLS
// connection); with Debian's whole CA bundle that costs ~100 ms per start on these machines, more
// than ice-test's own start-up, and it hides the program's cost in every figure. The bench sets such
// variables aside, so that its processes start as a systemd service would, and `startup` measures
// what each one costs in a row of its own. `--keep-env` keeps them.

/** A variable the bench took out of its environment, with its value for the row that measures it. */
export interface StartupTax {
  readonly name: string;
  readonly value: string;
}

const TAXING = ["NODE_EXTRA_CA_CERTS"] as const;

/** Removes the taxing variables from `env` (children inherit it) and returns what it removed. */
export function setAsideStartupTaxes(env: NodeJS.ProcessEnv): StartupTax[] {
  return TAXING.flatMap((name) => {
    const value = env[name];
    if (value === undefined || value === "") return [];
    delete env[name];
    return [{ name, value }];
  });
}
