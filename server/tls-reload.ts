// Certificates renewed on disk (certbot, cert-manager, a cron job) reach new connections without
// a restart: on SIGHUP, and when the files change. Their folders are watched rather than the
// files, since renewals usually replace a file (rename, or a symlink swap in Kubernetes secrets)
// and a watch on the old file would see nothing more. Until a complete, matching pair is on disk
// the server keeps serving the certificate it has.
import { X509Certificate } from "node:crypto";
import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { logLine, type Log } from "./log.ts";
import type { ServerTls } from "./tls-credentials.ts";
import { loadTlsFiles } from "./tls.ts";

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  clientCaFile?: string;
}

/** Renewals write several files; this long without an event means they are done. */
const SETTLE_MS = 100;

export async function loadServerTls(files: TlsFiles): Promise<ServerTls> {
  const { cert, key } = await loadTlsFiles(files.certFile, files.keyFile);
  if (!files.clientCaFile) return { cert, key };
  return { cert, key, clientCa: await readClientCa(files.clientCaFile) };
}

export class TlsReloader {
  private readonly watchers: FSWatcher[] = [];
  private current: ServerTls;
  private settle: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly files: TlsFiles,
    initial: ServerTls,
    private readonly apply: (tls: ServerTls) => void,
    private readonly log: Log,
  ) {
    this.current = initial;
  }

  /** Reads the files again and serves them; on SIGHUP even when unchanged, so the log confirms. */
  reload(trigger: "SIGHUP" | "file-change"): Promise<void> {
    this.running = this.running.then(() => this.load(trigger));
    return this.running;
  }

  watch(): void {
    const folders = new Set([this.files.certFile, this.files.keyFile, this.files.clientCaFile].filter((file) => file !== undefined).map((file) => dirname(file)));
    for (const folder of folders) {
      const watcher = watch(folder, { persistent: false }, () => this.changed());
      watcher.on("error", (err) => this.log(logLine("tls-reload-failed", { trigger: "file-change", error: `Cannot watch ${folder}: ${err.message}` })));
      this.watchers.push(watcher);
    }
  }

  close(): void {
    clearTimeout(this.settle);
    for (const watcher of this.watchers.splice(0)) watcher.close();
  }

  private changed(): void {
    clearTimeout(this.settle);
    this.settle = setTimeout(() => void this.reload("file-change"), SETTLE_MS);
    this.settle.unref();
  }

  private async load(trigger: "SIGHUP" | "file-change"): Promise<void> {
    let next: ServerTls;
    try {
      next = await loadServerTls(this.files);
    } catch (err) {
      this.log(logLine("tls-reload-failed", { trigger, error: (err as Error).message, keeping: describe(this.current) }));
      return;
    }
    if (trigger === "file-change" && sameTls(next, this.current)) return;
    this.apply(next);
    this.current = next;
    this.log(logLine("tls-reloaded", { trigger, certificate: describe(next) }));
  }
}

export async function readClientCa(file: string): Promise<string> {
  let pem: string;
  try {
    pem = await readFile(file, "utf8");
  } catch (err) {
    throw new Error(`Cannot read the client CA file "${file}": ${(err as Error).message}`, { cause: err });
  }
  try {
    new X509Certificate(pem);
  } catch (err) {
    throw new Error(`Client CA file "${file}" holds no valid PEM certificate: ${(err as Error).message}`, { cause: err });
  }
  return pem;
}

function sameTls(a: ServerTls, b: ServerTls): boolean {
  return String(a.cert) === String(b.cert) && String(a.key) === String(b.key) && String(a.clientCa) === String(b.clientCa);
}

/** Subject, expiry and fingerprint: what an operator checks after a renewal. */
function describe(tls: ServerTls): string {
  const certificate = new X509Certificate(tls.cert);
  return `${certificate.subject.replace(/\n/g, ",")} until ${new Date(certificate.validTo).toISOString()} sha256 ${certificate.fingerprint256.slice(0, 23)}`;
}
