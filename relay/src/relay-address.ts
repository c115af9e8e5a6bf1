// Which relay a NIP-42 AUTH event's `relay` tag must name. With --public-url it is that URL;
// without it, the address the client used to reach us: the Host header (behind a trusted
// proxy X-Forwarded-Host / X-Forwarded-Proto) and, when no proxy rewrites it, the path.
// NIP-42: "URL normalization techniques can be applied. For most cases just checking if the
// domain name is correct should be enough."
import type { HttpRequest } from './transport/transport.ts';

export interface RelayAddress {
  /** Lower-case host name as WHATWG URL normalises it (IPv6 in brackets). */
  readonly hostname: string;
  /** Explicit port; undefined when the client used its scheme's default port. */
  readonly port?: number;
  /** `ws` or `wss` when known (a configured URL, or a trusted proxy's X-Forwarded-Proto). */
  readonly scheme?: 'ws' | 'wss';
  /** Path without trailing slashes (`''` for the root); undefined when it cannot be known. */
  readonly path?: string;
}

const DEFAULT_PORT = { ws: 80, wss: 443 } as const;

const trimPath = (p: string): string => p.replace(/\/+$/, '');

/** A configured ws(s):// URL as an address (scheme, host, port and path all count). */
export function addressOfUrl(url: string): RelayAddress | undefined {
  let u: URL;
  try {
    u = new URL(url.trim());
  } catch {
    return undefined;
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') return undefined;
  const scheme = u.protocol === 'ws:' ? 'ws' : 'wss';
  return { hostname: u.hostname, ...(u.port ? { port: Number(u.port) } : {}), scheme, path: trimPath(u.pathname) };
}

/**
 * The address a client connected to, from its upgrade request. Behind a trusted proxy the
 * forwarded host and scheme win and the path is not compared (proxies rewrite paths).
 */
export function addressOfRequest(req: HttpRequest, trustProxy: boolean): RelayAddress | undefined {
  const forwardedHost = trustProxy ? req.headers['x-forwarded-host']?.split(',')[0]?.trim() : undefined;
  const host = forwardedHost || req.headers.host?.trim();
  if (!host) return undefined;
  let u: URL;
  try {
    u = new URL(`ws://${host}`);
  } catch {
    return undefined;
  }
  const proto = trustProxy ? req.headers['x-forwarded-proto']?.split(',')[0]?.trim().toLowerCase() : undefined;
  const scheme = proto === 'https' || proto === 'wss' ? 'wss' : proto === 'http' || proto === 'ws' ? 'ws' : undefined;
  return {
    hostname: u.hostname,
    ...(u.port ? { port: Number(u.port) } : {}),
    ...(scheme ? { scheme } : {}),
    ...(trustProxy ? {} : { path: trimPath(req.path.split('?')[0]) }),
  };
}

/**
 * Does a `relay` tag name this address? Same host; the same port (a default port stands for
 * its scheme's: 80 for ws, 443 for wss — either one when the scheme is not known); the same
 * path when it is known (trailing slashes and case ignored).
 */
export function namesRelay(tag: string, expected: RelayAddress): boolean {
  const got = addressOfUrl(tag);
  if (!got || got.hostname !== expected.hostname) return false;
  const port = got.port ?? DEFAULT_PORT[got.scheme!];
  if (expected.port !== undefined) {
    if (port !== expected.port) return false;
  } else if (expected.scheme !== undefined ? port !== DEFAULT_PORT[expected.scheme] : port !== 80 && port !== 443) return false;
  return expected.path === undefined || got.path!.toLowerCase() === expected.path.toLowerCase();
}
