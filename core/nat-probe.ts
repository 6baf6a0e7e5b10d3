// How this peer's NAT behaves, measured with STUN Binding requests before ICE (RFC 5780 §4.3,
// §4.4): the mapped address one socket gets from the STUN server's two ports and from a second
// server address (the TURN server) says whether the NAT keeps one mapping for every destination;
// whether an answer sent from the other port gets in says how it filters. Every answer is checked
// to come from the address asked: a NAT or server that answers from elsewhere would otherwise be
// misread, as the classic NAT tools do. The STUN wire format is werift's.
import { Buffer } from "node:buffer";
import { createSocket, type Socket } from "node:dgram";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";
import { Message, classes, methods, parseMessage } from "werift";

export type Mapping = "no-nat" | "endpoint-independent" | "address-dependent" | "address-and-port-dependent" | "unknown";
export type Filtering = "address-dependent-or-less" | "address-and-port-dependent" | "unknown";

export interface NatTargets {
  /** The STUN server ICE uses. */
  readonly primary: { readonly host: string; readonly port: number };
  /** The same server's second port (the signaling server's --stun-alt-port), if known. */
  readonly alternatePort?: number;
  /** Another server address that answers Binding requests over UDP (the TURN server). */
  readonly other?: { readonly host: string; readonly port: number };
}

export interface ProbeAnswer {
  /** "ip:port" asked. */
  readonly asked: string;
  /** "pending": still unanswered when the result was taken (the probe had not finished). */
  readonly outcome: "answered" | "no-answer" | "wrong-source" | "refused" | "pending";
  readonly mapped?: string;
  /** Where the answer came from, when not from the address asked. */
  readonly from?: string;
}

export interface NatProbeResult {
  readonly mapping: Mapping;
  readonly filtering: Filtering;
  /** The public address the primary server saw, "ip:port". */
  readonly mappedAddress?: string;
  /** Different server addresses (not ports) that answered. */
  readonly serverAddresses: number;
  /** In the order asked: the STUN server, its second port, the second address, the changed-port test. */
  readonly answers: readonly ProbeAnswer[];
  /** False when taken before every question was answered or timed out: what is pending counts as unknown. */
  readonly complete: boolean;
  readonly ms: number;
}

/** A probe running alongside ICE. */
export interface NatProbe {
  /** Every question answered or timed out (bounded as a whole: whatever stalls, it ends with what it knows). */
  readonly finished: Promise<NatProbeResult>;
  /** What is known now, without waiting: a run that ends first reports the rest as unknown. */
  now(): NatProbeResult;
  /** Closes the probe's sockets. */
  stop(): void;
}

const CHANGE_PORT = 0x02;
const RTO_MS = 250;

/** Starts the probe; it never delays ICE (its own sockets) and never keeps a finished run alive. */
export function startNatProbe(targets: NatTargets, limitMs = 2500): NatProbe {
  const started = performance.now();
  const questions: Question[] = [];
  const sockets: Socket[] = [];
  let localPort = 0;
  // Aborted before the sockets close: a question must stop at once, not at the socket's "close"
  // event, which Deno emits only after the timers already due have run (a retransmission among
  // them would send on the closed socket and throw).
  const stopping = new AbortController();
  const now = (): NatProbeResult => classify(questions, localPort, started);
  const stop = () => {
    stopping.abort();
    for (const socket of sockets.splice(0)) socket.close();
  };
  const run = async (): Promise<NatProbeResult> => {
    const primary = await resolve(targets.primary);
    const other = targets.other ? await resolve(targets.other).catch(() => undefined) : undefined;
    const alternate = targets.alternatePort ? { host: primary.host, port: targets.alternatePort } : undefined;
    const open = async () => {
      const socket = await openSocket();
      if (stopping.signal.aborted) socket.close();
      else sockets.push(socket);
      return socket;
    };
    const mappingSocket = await open();
    // A fresh socket, so no earlier packet to the other port has opened the NAT for it.
    const filteringSocket = alternate ? await open() : undefined;
    if (stopping.signal.aborted) return now();
    localPort = mappingSocket.address().port;
    const pose = (role: Question["role"], socket: Socket, to: Target, answerFrom?: Target) => {
      const question: Question = { role, asked: `${to.host}:${to.port}` };
      questions.push(question);
      return ask(socket, to, limitMs, stopping.signal, answerFrom).then((answer) => {
        // Undefined: stopped before an answer or the timeout; it stays pending.
        if (answer) question.answer = answer;
      });
    };
    await Promise.all([
      pose("primary", mappingSocket, primary),
      alternate ? pose("alternate", mappingSocket, alternate) : undefined,
      other ? pose("other", mappingSocket, other) : undefined,
      filteringSocket && alternate ? pose("changed", filteringSocket, primary, alternate) : undefined,
    ]);
    return now();
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bounded = new Promise<NatProbeResult>((done) => (timer = setTimeout(() => done(now()), limitMs + 1500)));
  const halted = new Promise<NatProbeResult>((done) => stopping.signal.addEventListener("abort", () => done(now())));
  const finished = Promise.race([run().catch(() => now()), bounded, halted]).finally(() => {
    clearTimeout(timer);
    stop();
  });
  return { finished, now, stop };
}

interface Question {
  readonly role: "primary" | "alternate" | "other" | "changed";
  readonly asked: string;
  answer?: ProbeAnswer;
}

function classify(questions: readonly Question[], localPort: number, started: number): NatProbeResult {
  const answerOf = (role: Question["role"]) => {
    const q = questions.find((x) => x.role === role);
    return q ? (q.answer ?? { asked: q.asked, outcome: "pending" as const }) : undefined;
  };
  const [first, second, third, changed] = (["primary", "alternate", "other", "changed"] as const).map(answerOf);
  const mapped = first?.outcome === "answered" ? first.mapped : undefined;
  const answers = [first, second, third, changed].filter((a): a is ProbeAnswer => a !== undefined);
  return {
    mapping: classifyMapping(mapped, second, third, localPort),
    filtering: classifyFiltering(changed, second),
    ...(mapped ? { mappedAddress: mapped } : {}),
    serverAddresses: new Set([first, third].filter((a) => a?.outcome === "answered").map((a) => a!.asked.replace(/:\d+$/, ""))).size,
    answers,
    complete: questions.length > 0 && answers.every((a) => a.outcome !== "pending"),
    ms: Math.round(performance.now() - started),
  };
}

/** Exported for unit tests: the mapping from what the three addresses answered. */
export function classifyMapping(mapped: string | undefined, samePortTwo: ProbeAnswer | undefined, otherAddress: ProbeAnswer | undefined, localPort: number): Mapping {
  if (!mapped) return "unknown";
  if (isLocal(mapped, localPort)) return "no-nat";
  const portTwo = samePortTwo?.outcome === "answered" ? samePortTwo.mapped : undefined;
  const addressTwo = otherAddress?.outcome === "answered" ? otherAddress.mapped : undefined;
  if (portTwo && portTwo !== mapped) return "address-and-port-dependent";
  if (addressTwo && addressTwo !== mapped) return portTwo ? "address-dependent" : "address-and-port-dependent";
  if (portTwo || addressTwo) return "endpoint-independent";
  return "unknown";
}

/** Exported for unit tests: did the answer sent from the other port get in? */
export function classifyFiltering(changed: ProbeAnswer | undefined, alternateAnswer: ProbeAnswer | undefined): Filtering {
  if (!changed) return "unknown";
  if (changed.outcome === "answered") return "address-dependent-or-less";
  // Silence means filtering only if the other port is known to answer at all.
  if (changed.outcome === "no-answer" && alternateAnswer?.outcome === "answered") return "address-and-port-dependent";
  return "unknown";
}

/** The classic name, for people. */
export function natName(mapping: Mapping, filtering: Filtering): string {
  switch (mapping) {
    case "no-nat":
      return "no NAT";
    case "endpoint-independent":
      if (filtering === "address-and-port-dependent") return "port-restricted cone NAT";
      if (filtering === "address-dependent-or-less") return "full or address-restricted cone NAT";
      return "cone NAT";
    case "address-dependent":
      return "symmetric NAT (address-dependent mapping)";
    case "address-and-port-dependent":
      return "symmetric NAT (rewrites ports per destination)";
    case "unknown":
      return "NAT behaviour unknown";
  }
}

export function describeNat(result: NatProbeResult): string {
  const asked = result.answers
    .map((a) => `${a.asked} ${a.outcome === "answered" ? `saw ${a.mapped}` : a.outcome === "wrong-source" ? `answered from ${a.from} (ignored)` : a.outcome}`)
    .join("; ");
  const caveat = result.mapping === "endpoint-independent" && result.serverAddresses < 2 ? " (one server address: address-dependent mapping not ruled out)" : "";
  const incomplete = result.complete ? "" : " (probe incomplete when the run ended: what is pending counts as unknown)";
  return `NAT: ${natName(result.mapping, result.filtering)}: ${result.mapping} mapping, ${result.filtering} filtering${caveat}${incomplete} [${asked}] (${result.ms} ms)`;
}

interface Target {
  readonly host: string;
  readonly port: number;
}

async function resolve(target: Target): Promise<Target> {
  if (isIP(target.host) === 4) return target;
  const { address } = await lookup(target.host, { family: 4 });
  return { host: address, port: target.port };
}

function openSocket(): Promise<Socket> {
  const socket = createSocket("udp4");
  return new Promise((done, fail) => {
    // Seen once in a while under load: a bind whose callback never comes. Give up on it.
    const timer = setTimeout(() => fail(new Error("could not bind a UDP socket within 1 s")), 1000);
    socket.once("error", (err) => {
      clearTimeout(timer);
      fail(err);
    });
    socket.bind({ port: 0, address: "0.0.0.0" }, () => {
      clearTimeout(timer);
      socket.on("error", () => undefined);
      // A probe must never keep a finished run alive.
      socket.unref();
      done(socket);
    });
  });
}

/**
 * One Binding request, retransmitted with a doubling timeout until `stopped` aborts; `answerFrom`
 * is where the answer must come from (another port when CHANGE-REQUEST asks for it).
 */
function ask(socket: Socket, to: Target, limitMs: number, stopped: AbortSignal, answerFrom?: Target): Promise<ProbeAnswer | undefined> {
  const request = new Message(methods.BINDING, classes.REQUEST);
  if (answerFrom) request.setAttribute("CHANGE-REQUEST", CHANGE_PORT);
  request.addFingerprint();
  const expected = answerFrom ?? to;
  const asked = `${to.host}:${to.port}`;
  return new Promise((done) => {
    let rto = RTO_MS;
    let timer: ReturnType<typeof setTimeout>;
    let wrongSource: string | undefined;
    const finish = (answer: ProbeAnswer | undefined) => {
      clearTimeout(timer);
      clearTimeout(limit);
      socket.off("message", onMessage);
      stopped.removeEventListener("abort", onStop);
      done(answer);
    };
    const onStop = () => finish(undefined);
    const onMessage = (data: Buffer, from: { address: string; port: number }) => {
      const response = parseMessage(data);
      if (!response || response.transactionIdHex !== request.transactionIdHex) return;
      if (from.address !== expected.host || from.port !== expected.port) {
        // Keep listening: the right answer may still come; remember what came instead.
        wrongSource = `${from.address}:${from.port}`;
        return;
      }
      if (response.messageClass !== classes.RESPONSE) return finish({ asked, outcome: "refused" });
      const mapped = response.getAttributeValue("XOR-MAPPED-ADDRESS") as [string, number] | undefined;
      finish(mapped ? { asked, outcome: "answered", mapped: `${mapped[0]}:${mapped[1]}` } : { asked, outcome: "refused" });
    };
    const limit = setTimeout(() => finish(wrongSource ? { asked, outcome: "wrong-source", from: wrongSource } : { asked, outcome: "no-answer" }), limitMs);
    socket.on("message", onMessage);
    stopped.addEventListener("abort", onStop);
    const send = () => socket.send(request.bytes, to.port, to.host);
    send();
    timer = setTimeout(function again() {
      send();
      rto *= 2;
      timer = setTimeout(again, rto);
    }, rto);
  });
}

function isLocal(mapped: string, localPort: number): boolean {
  const [address, port] = [mapped.replace(/:\d+$/, ""), Number(mapped.split(":").at(-1))];
  if (port !== localPort) return false;
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => i.address === address));
}


/**
 * What to ask, from the ICE setup: the STUN server ICE uses; its second port when the signaling
 * server offered the same host twice in one entry (its --stun-alt-port convention); the first
 * TURN server reached over UDP (the configured one first), which answers Binding requests too. A
 * TURN URL over TCP or TLS says nothing about a UDP port: a Binding request there goes unanswered
 * and the second-address test would be lost.
 */
export function natTargets(stun: string | undefined, offered: readonly { readonly urls: readonly string[] }[], turnUrl?: string): NatTargets | undefined {
  const primary = stun ? hostPort(stun) : undefined;
  if (!primary) return undefined;
  const sameServer = offered.find((s) => s.urls.some((u) => sameTarget(hostPort(u), primary)));
  const alternate = sameServer?.urls.map(hostPort).find((t) => t && t.host === primary.host && t.port !== primary.port);
  const turn = [...(turnUrl ? [turnUrl] : []), ...offered.flatMap((s) => s.urls)].find((u) => /^turn:/i.test(u) && !/[?&]transport=tcp\b/i.test(u));
  const other = turn ? hostPort(turn) : undefined;
  return { primary, ...(alternate ? { alternatePort: alternate.port } : {}), ...(other && other.host !== primary.host ? { other } : {}) };
}

function hostPort(url: string): Target | undefined {
  const authority = url.replace(/^(stuns?|turns?):/i, "").split("?")[0] ?? "";
  const match = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(authority);
  if (!match?.[1]) return undefined;
  return { host: match[1], port: Number(match[2] ?? 3478) };
}

function sameTarget(a: Target | undefined, b: Target): boolean {
  return a !== undefined && a.host === b.host && a.port === b.port;
}
