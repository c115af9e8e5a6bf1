import { ACCEPT, reject, type Policy } from '../policy.ts';

/** Rejects events dated more than `pastSecs` before or `futureSecs` after the time the relay received them. */
export function createdAtWindow(opts: { pastSecs?: number; futureSecs?: number }): Policy {
  return (event, ctx) => {
    if (opts.futureSecs !== undefined && event.created_at > ctx.receivedAt + opts.futureSecs) return reject(`invalid: created_at is more than ${opts.futureSecs} seconds in the future`);
    if (opts.pastSecs !== undefined && event.created_at < ctx.receivedAt - opts.pastSecs) return reject(`invalid: created_at is more than ${opts.pastSecs} seconds in the past`);
    return ACCEPT;
  };
}
