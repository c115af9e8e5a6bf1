import { ACCEPT, reject, type Policy } from '../policy.ts';

/** Rejects events with more than `max` tags, or any tag with more than `maxValues` elements. */
export function maxTags(max: number, opts: { maxValues?: number } = {}): Policy {
  return (event) => {
    if (event.tags.length > max) return reject(`invalid: too many tags (${event.tags.length} > ${max})`);
    if (opts.maxValues !== undefined) {
      const i = event.tags.findIndex((t) => t.length > opts.maxValues!);
      if (i >= 0) return reject(`invalid: tag ${i} has ${event.tags[i].length} elements, the limit is ${opts.maxValues}`);
    }
    return ACCEPT;
  };
}
