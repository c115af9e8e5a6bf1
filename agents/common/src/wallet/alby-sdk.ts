// Loads @getalby/sdk's NWC module with a WebSocket implementation in place. The SDK's
// bundled nostr-tools captures `globalThis.WebSocket` when the module is first evaluated,
// and Node 20 has none, so the global must be set before the (dynamic) import.
import WebSocket from 'ws';

type NwcModule = typeof import('@getalby/sdk/nwc');

let loading: Promise<NwcModule> | undefined;

export function loadNwcSdk(): Promise<NwcModule> {
  return (loading ??= (async () => {
    const g = globalThis as { WebSocket?: unknown };
    if (g.WebSocket === undefined) g.WebSocket = WebSocket;
    return import('@getalby/sdk/nwc');
  })());
}

/** Adapts a pino logger to the SDK's `{ debug(...args) }` logger, keeping only strings (never payloads). */
export function sdkLogger(log: { debug: (obj: object, msg: string) => void }): { debug: (...args: unknown[]) => void } {
  return {
    debug: (...args: unknown[]) => log.debug({ sdk: args.filter((a) => typeof a === 'string').join(' ') }, 'nwc sdk'),
  };
}
