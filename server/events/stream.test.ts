// releasableStream: a cancelled stream lets go at once, whatever its generator was doing.
import { describe, expect, it } from 'vitest';
import { releasableStream, type StreamControl } from './stream.js';

/** A stream over a generator that only ever waits, recording what ran. */
function waitingStream() {
  const seen = { started: false, finished: false, ended: 0 };
  let control: StreamControl | undefined;
  const stream = releasableStream<number>(
    async function* (c) {
      control = c;
      seen.started = true;
      try {
        while (!c.signal.aborted) {
          await c.wait();
          if (!c.signal.aborted) yield 0;
        }
      } finally {
        seen.finished = true;
      }
    },
    () => seen.ended++,
  );
  return { stream, seen, wake: () => control?.wake() };
}

// A stream that does not let go would hang its test: fail it in two seconds instead.
describe('releasableStream', { timeout: 2000 }, () => {
  it('a stream cancelled while it waits for its next event finishes at once', async () => {
    const { stream, seen } = waitingStream();
    const pending = stream.next();
    await new Promise((r) => setTimeout(r, 10));
    expect(seen.started).toBe(true);
    // A plain async generator would hold this return() until its next yield: here, never.
    await expect(stream.return!()).resolves.toEqual({ done: true, value: undefined });
    await expect(pending).resolves.toEqual({ done: true, value: undefined });
    expect(seen).toEqual({ started: true, finished: true, ended: 1 });
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
  });

  it('a woken stream delivers, then still lets go at once', async () => {
    const { stream, seen, wake } = waitingStream();
    const first = stream.next();
    await new Promise((r) => setTimeout(r, 10));
    wake();
    await expect(first).resolves.toEqual({ done: false, value: 0 });
    const second = stream.next();
    await stream.return!();
    await expect(second).resolves.toEqual({ done: true, value: undefined });
    expect(seen).toEqual({ started: true, finished: true, ended: 1 });
  });

  it('a stream never started still ends (its release runs once)', async () => {
    const { stream, seen } = waitingStream();
    await stream.return!();
    await stream.return!();
    expect(seen).toEqual({ started: false, finished: false, ended: 1 });
  });

  it('delivers what its generator yields, and ends when the generator does', async () => {
    let ended = 0;
    const stream = releasableStream<number>(
      async function* ({ wait, wake }) {
        wake(); // kept for the next wait
        await wait();
        yield 1;
        yield 2;
      },
      () => ended++,
    );
    const values: number[] = [];
    for await (const value of stream) values.push(value);
    expect(values).toEqual([1, 2]);
    expect(ended).toBe(1);
  });

  it('a failing generator ends the stream with its error', async () => {
    let ended = 0;
    const stream = releasableStream<number>(
      // biome-ignore lint/correctness/useYield: fails before it yields
      async function* () {
        throw new Error('boom');
      },
      () => ended++,
    );
    await expect(stream.next()).rejects.toThrow('boom');
    expect(ended).toBe(1);
  });
});
