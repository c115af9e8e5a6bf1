// One spelling per relay: the pool keys its connections, the NIP-90 `relays` tag and the
// NIP-42 `relay` tag by this form, so `wss://Relay.example.com/` and
// `wss://relay.example.com` are one relay. Same rules as nostr-tools' normalizeURL
// (lower-case scheme and host, no default port, no trailing or doubled slashes, sorted
// query, no fragment), but strict: anything that is not a ws(s) URL is refused.

/** The normal form of a relay URL, or undefined when `url` is not a usable ws:// or wss:// URL. */
export function normalizeRelayUrl(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url.trim());
  } catch {
    return undefined;
  }
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') return undefined;
  // Credentials in a relay URL would be sent to whoever runs it, and logged: refuse them.
  if (u.username || u.password || !u.hostname) return undefined;
  if ((u.port === '80' && u.protocol === 'ws:') || (u.port === '443' && u.protocol === 'wss:')) u.port = '';
  u.pathname = u.pathname.replace(/\/+/g, '/').replace(/\/$/, '');
  u.searchParams.sort();
  u.hash = '';
  // URL keeps a lone "/" path; drop it so "wss://a" and "wss://a/" are one key.
  return u.toString().replace(/\/(\?|$)/, '$1');
}
