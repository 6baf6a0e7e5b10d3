// What a broker tells the metrics endpoint on each scrape. Optional for a Broker: one that cannot
// count cheaply (a shared one, say) leaves these gauges out.
export interface BrokerStats {
  /** Registered peers, with or without a stream. */
  readonly peers: number;
  readonly rooms: number;
  /** Events waiting in mailboxes for their recipient's stream. */
  readonly queuedEvents: number;
  /** Their size as they would go on the wire. */
  readonly queuedBytes: number;
}

export interface BrokerStatsSource {
  stats(): BrokerStats;
}

export function hasStats(broker: object): broker is BrokerStatsSource {
  return typeof (broker as Partial<BrokerStatsSource>).stats === "function";
}
