// The relay cluster's settings, apart from the NATS client (so `bazaar relay` checks its flags
// without loading it).

export interface ClusterOptions {
  /** NATS server URL(s), comma-separated: nats://host:4222. */
  readonly servers: string;
  /** This node's name: unique in the cluster, names its durable consumer. [A-Za-z0-9_-], ≤ 64. */
  readonly node: string;
  /** JetStream stream of accepted events. Default BAZAAR_EVENTS. */
  readonly stream?: string;
  /** Subject prefix: events on `<prefix>.events.<kind>`, ephemeral events on `<prefix>.ephemeral`. Default bazaar. */
  readonly subjectPrefix?: string;
  /** How long the stream keeps an event (a node down longer catches up by NIP-77). Default 7 days. */
  readonly retentionSecs?: number;
  /** Most events the stream keeps (oldest dropped first); unset: no count limit, only the age. */
  readonly retentionEvents?: number;
  /** Window in which the stream drops a re-published event id. Default 120 s (or the retention, when shorter). */
  readonly duplicateWindowSecs?: number;
  /** Stream replicas across a NATS cluster (1 on a single server). Default 1. */
  readonly replicas?: number;
  /** This node's ws(s):// URL as peers reach it, for their NIP-77 catch-up. */
  readonly peerUrl?: string;
  /** Catch up from a peer by NIP-77 when needed (new node, data lost, behind retention). Default true. */
  readonly catchUp?: boolean;
  /** Stream messages being stored at once. Default 512. */
  readonly inflight?: number;
  /** Wait this long for the stream's ack of a publish. Default 5 000 ms. */
  readonly publishTimeoutMs?: number;
}

const NODE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function checkClusterOptions(o: ClusterOptions): void {
  if (!NODE_NAME.test(o.node)) throw new RangeError(`cluster node name must be 1-64 characters of A-Z a-z 0-9 _ - (got ${JSON.stringify(o.node)})`);
  if (!o.servers.split(',').every((s) => /^(nats|tls):\/\/[^\s/]+$|^[^\s/:]+:\d+$/.test(s.trim()))) throw new RangeError(`cluster servers must be nats://host:port, comma-separated (got ${JSON.stringify(o.servers)})`);
  if (o.stream !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(o.stream)) throw new RangeError(`cluster stream name must be 1-64 characters of A-Z a-z 0-9 _ - (got ${JSON.stringify(o.stream)})`);
  if (o.subjectPrefix !== undefined && !/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(o.subjectPrefix)) throw new RangeError(`cluster subject prefix must be dot-separated tokens (got ${JSON.stringify(o.subjectPrefix)})`);
  const pos = (name: string, v: number | undefined): void => {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 1)) throw new RangeError(`cluster ${name} must be a positive integer (got ${v})`);
  };
  pos('retentionSecs', o.retentionSecs);
  pos('duplicateWindowSecs', o.duplicateWindowSecs);
  pos('replicas', o.replicas);
  pos('inflight', o.inflight);
  pos('publishTimeoutMs', o.publishTimeoutMs);
  pos('retentionEvents', o.retentionEvents);
  if (o.duplicateWindowSecs !== undefined && o.duplicateWindowSecs > (o.retentionSecs ?? 604_800)) throw new RangeError('cluster duplicate window must not exceed the retention');
  if (o.peerUrl !== undefined && !/^wss?:\/\/./.test(o.peerUrl)) throw new RangeError(`cluster peer URL must be ws:// or wss:// (got ${JSON.stringify(o.peerUrl)})`);
}
