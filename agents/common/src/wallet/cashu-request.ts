// The HTTP request function our Cashu wallets give cashu-ts, per mint instance, instead of
// cashu-ts's process-wide setGlobalRequestOptions: every mint call has our deadline (and
// the caller's AbortSignal), nothing else in the process is affected. It follows cashu-ts's
// RequestFn error contract: a NUT error body is a MintOperationError, 429 a RateLimitError,
// other HTTP failures an HttpResponseError, transport failures and timeouts a NetworkError.
import { HttpResponseError, JSONInt, MintOperationError, NetworkError, RateLimitError, type RequestFn, type RequestOptions } from '@cashu/cashu-ts';

export function timedRequest(defaultTimeoutMs: number): RequestFn {
  return async <T>(args: RequestOptions): Promise<T> => {
    const { endpoint, requestBody, headers, requestTimeout, signal, method } = args;
    const timeoutMs = requestTimeout ?? defaultTimeoutMs;
    const deadline = AbortSignal.timeout(timeoutMs);
    const body = requestBody ? JSONInt.stringify(requestBody) : undefined;
    let res: Response;
    let text: string;
    try {
      res = await fetch(endpoint, {
        ...(method ? { method } : {}),
        ...(body !== undefined ? { body } : {}),
        headers: { Accept: 'application/json', ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...headers },
        signal: signal ? AbortSignal.any([signal, deadline]) : deadline,
      });
      text = await res.text();
    } catch (err) {
      const why = deadline.aborted ? `request timed out after ${timeoutMs} ms` : signal?.aborted ? 'request aborted by caller' : `network request failed: ${(err as Error).message}`;
      throw new NetworkError(why, { cause: err });
    }
    if (!res.ok) {
      let parsed: unknown;
      try {
        parsed = JSONInt.parse(text);
      } catch {
        parsed = undefined;
      }
      const e = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as { code?: unknown; detail?: unknown; error?: unknown };
      if (res.status === 429) {
        const after = Number(res.headers.get('Retry-After'));
        throw new RateLimitError('429 Too Many Requests', Number.isFinite(after) ? after * 1000 : undefined);
      }
      if (res.status === 400 && typeof e.code === 'number' && typeof e.detail === 'string') throw new MintOperationError(e.code, e.detail);
      const message = typeof e.error === 'string' ? e.error : typeof e.detail === 'string' ? e.detail : text.slice(0, 200) || 'HTTP request failed';
      throw new HttpResponseError(message, res.status);
    }
    try {
      return JSONInt.parse(text) as T;
    } catch (err) {
      throw new HttpResponseError('bad response', res.status, { cause: err });
    }
  };
}
