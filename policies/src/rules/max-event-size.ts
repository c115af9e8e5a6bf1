import { ACCEPT, reject, type Policy } from '../policy.ts';

const encoder = new TextEncoder();

/** Rejects events whose JSON is larger than `bytes` (the size the relay measured, else the serialized event). */
export function maxEventSize(bytes: number): Policy {
  return (event, ctx) => {
    const size = ctx.size ?? encoder.encode(JSON.stringify(event)).length;
    return size > bytes ? reject(`invalid: event is ${size} bytes, the limit is ${bytes}`) : ACCEPT;
  };
}
