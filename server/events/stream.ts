// Subscriber streams that let go the moment they are cancelled.
//
// An async generator that is suspended on an `await` (waiting for its next event) cannot be
// returned: `return()` is queued until the generator reaches its next `yield`, so a cancelled
// subscription, its listener and everything it holds would stay in memory until an event it
// matches comes by, possibly never (one socket looping subscribe/complete grew the heap by
// gigabytes). Here the generator waits through `wait()`, and cancelling aborts that wait at once:
// the generator sees `signal.aborted`, returns, and its `finally` runs.

export interface StreamControl {
  /** Aborted when the consumer cancels (`return()` or `throw()`): stop, the `finally` runs. */
  signal: AbortSignal;
  /** Resolves at the next `wake()`, or at once when cancelled. */
  wait(): Promise<void>;
  /** Wakes a pending `wait()`; a wake with no one waiting is kept for the next `wait()`. */
  wake(): void;
}

/**
 * Runs `body` as the stream's producer. `onEnd` runs exactly once, when the stream ends for any
 * reason (cancelled, finished, failed) — even if it was never started.
 */
export function releasableStream<T>(
  body: (control: StreamControl) => AsyncGenerator<T>,
  onEnd?: () => void,
): AsyncIterableIterator<T> {
  const controller = new AbortController();
  let woken = false;
  let resolveWait: (() => void) | undefined;
  const control: StreamControl = {
    signal: controller.signal,
    wait() {
      if (woken || controller.signal.aborted) {
        woken = false;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => {
        resolveWait = resolve;
      });
    },
    wake() {
      const resolve = resolveWait;
      resolveWait = undefined;
      if (resolve) resolve();
      else woken = true;
    },
  };
  const generator = body(control);
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    onEnd?.();
  };
  const cancel = () => {
    controller.abort();
    control.wake();
    end();
    // The generator finishes as soon as its current await settles (at once when it was waiting
    // for an event); nothing waits for that here, so the consumer is never held up.
    generator.return(undefined).catch(() => {});
  };

  return {
    async next() {
      if (controller.signal.aborted) return { done: true, value: undefined };
      try {
        const result = await generator.next();
        // Cancelled while the generator was busy (reading a page of the log, say): what it
        // produced meanwhile is not delivered.
        if (controller.signal.aborted) return { done: true, value: undefined };
        if (result.done) end();
        return result;
      } catch (error) {
        end();
        throw error;
      }
    },
    async return() {
      cancel();
      return { done: true, value: undefined };
    },
    async throw(error?: unknown) {
      cancel();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
