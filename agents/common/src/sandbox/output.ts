// Bounded collection of a job's output stream: keeps the first `captureBytes`, hashes
// every byte, splits lines for progress callbacks, and never holds more than a line
// (capped) plus the captured prefix in memory, however much the job writes.
import { createHash, type Hash } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import type { RunResult } from './runner.ts';

export const DEFAULT_CAPTURE_BYTES = 64 * 1024;
const MAX_LINE_CHARS = 64 * 1024;

export class OutputStream {
  readonly #hash: Hash = createHash('sha256');
  readonly #captured: Buffer[] = [];
  #capturedBytes = 0;
  #bytes = 0;
  #truncated = false;
  readonly #decoder = new StringDecoder('utf8');
  #line = '';
  #lineCut = false;

  private readonly captureBytes: number;
  private readonly onLine: ((line: string) => void) | undefined;

  constructor(captureBytes: number, onLine?: (line: string) => void) {
    this.captureBytes = captureBytes;
    this.onLine = onLine;
  }

  get bytes(): number {
    return this.#bytes;
  }

  push(chunk: Buffer): void {
    this.#bytes += chunk.length;
    this.#hash.update(chunk);
    if (this.#capturedBytes < this.captureBytes) {
      const take = chunk.subarray(0, this.captureBytes - this.#capturedBytes);
      this.#captured.push(Buffer.from(take));
      this.#capturedBytes += take.length;
      if (take.length < chunk.length) this.#truncated = true;
    } else if (chunk.length > 0) {
      this.#truncated = true;
    }
    if (this.onLine) this.#splitLines(this.#decoder.write(chunk));
  }

  #splitLines(text: string): void {
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      this.#appendLine(text.slice(start, nl));
      this.#emit();
      start = nl + 1;
    }
    this.#appendLine(text.slice(start));
  }

  #appendLine(part: string): void {
    if (this.#lineCut || part.length === 0) return;
    const room = MAX_LINE_CHARS - this.#line.length;
    if (part.length > room) {
      this.#line += part.slice(0, room);
      this.#lineCut = true;
    } else {
      this.#line += part;
    }
  }

  #emit(): void {
    const line = this.#line;
    this.#line = '';
    this.#lineCut = false;
    try {
      this.onLine?.(line);
    } catch {
      // A faulty progress callback must not break the run.
    }
  }

  /** Flushes a final unterminated line and returns the collected result. */
  finish(): { text: string; truncated: boolean; sha256: string; bytes: number } {
    if (this.onLine) {
      this.#splitLines(this.#decoder.end());
      if (this.#line.length > 0) this.#emit();
    }
    return {
      text: Buffer.concat(this.#captured).toString('utf8'),
      truncated: this.#truncated,
      sha256: this.#hash.digest('hex'),
      bytes: this.#bytes,
    };
  }
}

/** What a stream's capture contributes to a RunResult. */
export type CapturedStreams = Pick<RunResult, 'stdout' | 'stderr' | 'stdoutTruncated' | 'stderrTruncated' | 'stdoutSha256' | 'stderrSha256' | 'stdoutBytes' | 'stderrBytes'>;

/** The RunResult fields of a finished stdout/stderr pair, the same for every runner. */
export function capturedStreams(o: ReturnType<OutputStream['finish']>, e: ReturnType<OutputStream['finish']>): CapturedStreams {
  return {
    stdout: o.text,
    stderr: e.text,
    stdoutTruncated: o.truncated,
    stderrTruncated: e.truncated,
    stdoutSha256: o.sha256,
    stderrSha256: e.sha256,
    stdoutBytes: o.bytes,
    stderrBytes: e.bytes,
  };
}
