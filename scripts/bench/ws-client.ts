// A thin Nostr client connection over `ws` for the benchmarks: open with a
// timeout, send frames, hand parsed relay messages to one handler.
import WebSocket from 'ws';

export type RelayMessage = unknown[];

export class BenchConn {
  readonly ws: WebSocket;
  onMessage: (msg: RelayMessage) => void = () => {};
  /** When set, receives every frame as text instead of onMessage (a client that skips parsing EVENTs it only counts). */
  onText: ((text: string) => void) | undefined;
  /** Frames that were not a JSON array. */
  garbage = 0;
  closed = false;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data: WebSocket.RawData) => {
      if (this.onText) {
        this.onText(data.toString());
        return;
      }
      let msg: unknown;
      try {
        msg = JSON.parse(data.toString());
      } catch {
        this.garbage++;
        return;
      }
      if (Array.isArray(msg)) this.onMessage(msg);
      else this.garbage++;
    });
    ws.on('close', () => (this.closed = true));
    ws.on('error', () => (this.closed = true));
  }

  static open(url: string, timeoutMs = 10_000): Promise<BenchConn> {
    return new Promise((resolve, reject) => {
      // No compression: measure the relay, not zlib.
      const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
      const fail = (err: Error): void => {
        ws.removeAllListeners();
        ws.on('error', () => {});
        ws.terminate();
        reject(err);
      };
      ws.once('open', () => {
        ws.removeListener('error', fail);
        resolve(new BenchConn(ws));
      });
      ws.once('error', fail);
    });
  }

  send(frame: unknown[] | string): void {
    if (!this.closed) this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Closes and waits for the close handshake (bounded; terminates after timeoutMs). */
  close(timeoutMs = 5000): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.ws.terminate();
        resolve();
      }, timeoutMs);
      this.ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.ws.close();
    });
  }
}

/** Opens n connections with at most `parallel` handshakes in flight. */
export async function openMany(url: string, n: number, parallel = 100, timeoutMs = 10_000): Promise<BenchConn[]> {
  const out: BenchConn[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++;
      out.push(await BenchConn.open(url, timeoutMs));
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(parallel, n) }, worker));
  } catch (err) {
    await closeAll(out);
    throw err;
  }
  return out;
}

export async function closeAll(conns: readonly BenchConn[]): Promise<void> {
  for (let i = 0; i < conns.length; i += 500) await Promise.all(conns.slice(i, i + 500).map((c) => c.close()));
}
