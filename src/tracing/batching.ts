/*
 * Batches are cut by span count first; their byte size is then known exactly, because each
 * batch is serialized before it is sent. A batch whose body is over the byte limit, or that
 * the collector refused as too large (413), is halved, keeping span order, until each half
 * fits or holds a single span.
 */

/** Consecutive runs of at most `maxSpans` items, in order. */
export function chunkBySpans<T>(spans: readonly T[], maxSpans: number): T[][] {
  const size = Math.max(1, Math.floor(maxSpans));
  const chunks: T[][] = [];
  for (let start = 0; start < spans.length; start += size) chunks.push(spans.slice(start, start + size));
  return chunks;
}

/** The first and second half of a batch of at least two items (the first half takes the odd one). */
export function splitInHalf<T>(batch: readonly T[]): [T[], T[]] {
  const middle = Math.ceil(batch.length / 2);
  return [batch.slice(0, middle), batch.slice(middle)];
}
