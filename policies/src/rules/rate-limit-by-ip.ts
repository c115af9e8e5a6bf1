import { systemClock, type Clock } from '../clock.ts';
import { ACCEPT, reject, type Policy } from '../policy.ts';
import { TokenBuckets } from './token-bucket.ts';

/** The bucket key for an address: IPv4 as is, IPv6 by its /64 (one host usually owns a whole /64). */
export function ipKey(ip: string): string {
  const v4mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (v4mapped) return v4mapped[1];
  if (!ip.includes(':')) return ip;
  const [head, tail = ''] = ip.toLowerCase().split('%')[0].split('::');
  const h = head ? head.split(':') : [];
  const t = ip.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = [...h, ...Array(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':') + '::/64';
}

/** This machine: 127.0.0.0/8, ::1, and IPv4-mapped loopback. */
export function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1' || /^::ffff:127\./i.test(ip);
}

/** Token bucket per client address; only events from live connections (`ws`) are limited. */
export function rateLimitByIp(opts: { perSecond: number; burst: number; maxKeys?: number; clock?: Clock }): Policy {
  const buckets = new TokenBuckets({ ...opts, clock: opts.clock ?? systemClock });
  return (_event, ctx) => {
    if (ctx.source.type !== 'ws') return ACCEPT;
    return buckets.take(ipKey(ctx.source.ip)) ? ACCEPT : reject(`rate-limited: slow down, at most ${opts.perSecond} events/s from one address`);
  };
}
