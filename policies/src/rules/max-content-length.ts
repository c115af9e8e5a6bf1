import { ACCEPT, reject, type Policy } from '../policy.ts';

/** Unicode characters (code points) of a string, as NIP-11's `max_content_length` counts them. */
export function codePointLength(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      n--;
      i++;
    }
  }
  return n;
}

/** Rejects events whose `content` has more than `chars` characters (code points). */
export function maxContentLength(chars: number): Policy {
  return (event) => {
    // UTF-16 length ≥ code points: only long strings need counting.
    if (event.content.length <= chars || codePointLength(event.content) <= chars) return ACCEPT;
    return reject(`invalid: content longer than ${chars} characters`);
  };
}
