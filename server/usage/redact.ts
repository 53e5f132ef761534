// Keeps secrets out of what the proxy passes back: some providers echo the Authorization header
// (a 401 page quoting the key, a debug field, a header), and the pool's key must never reach a
// lease holder. Each secret is replaced by as many `*` as it has bytes, so lengths (and a
// content-length already sent) stay right. A secret split across two chunks is caught too: the
// end of a chunk that could begin a secret is held back until the next chunk shows whether it
// does (an event stream's chunks end in a blank line, which begins no secret, so in practice
// nothing is held).
//
// Secrets shorter than MIN_SECRET_BYTES are left alone: a local server's placeholder key
// (`ollama`, `x`) is no secret, and masking every `x` would garble the answers.
export const MIN_SECRET_BYTES = 8;

export interface Redactor {
  /** The chunk with every secret masked, less a tail held back (see above). */
  read(chunk: Buffer): Buffer;
  /** The held-back tail, at the end of the answer. */
  end(): Buffer;
}

const STAR = 0x2a;
const PASS_THROUGH: Redactor = { read: (chunk) => chunk, end: () => Buffer.alloc(0) };

/** The longest tail of `data` that is a proper beginning of `secret` (0 when none). */
function heldLength(data: Buffer, secret: Buffer): number {
  const first = secret[0]!;
  for (let at = Math.max(0, data.length - secret.length + 1); at < data.length; at++) {
    if (data[at] !== first) continue;
    const tail = data.length - at;
    if (data.compare(secret, 0, tail, at) === 0) return tail;
  }
  return 0;
}

export function createRedactor(secrets: readonly (string | undefined)[]): Redactor {
  const patterns = [...new Set(secrets)]
    .filter((s): s is string => s !== undefined && Buffer.byteLength(s) >= MIN_SECRET_BYTES)
    .map((s) => Buffer.from(s));
  if (patterns.length === 0) return PASS_THROUGH;
  let held: Buffer | undefined;

  return {
    read(chunk) {
      let data = held ? Buffer.concat([held, chunk]) : chunk;
      held = undefined;
      let copied = data !== chunk;
      for (const secret of patterns) {
        for (let at = data.indexOf(secret); at >= 0; at = data.indexOf(secret, at + secret.length)) {
          // The upstream's buffer is not ours to write into.
          if (!copied) {
            data = Buffer.from(data);
            copied = true;
          }
          data.fill(STAR, at, at + secret.length);
        }
      }
      let hold = 0;
      for (const secret of patterns) hold = Math.max(hold, heldLength(data, secret));
      if (hold === 0) return data;
      held = Buffer.from(data.subarray(data.length - hold));
      return data.subarray(0, data.length - hold);
    },
    end() {
      const rest = held ?? Buffer.alloc(0);
      held = undefined;
      return rest;
    },
  };
}

/** A header value or other text with every secret masked (same rule as the redactor). */
export function redactText(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret === undefined || Buffer.byteLength(secret) < MIN_SECRET_BYTES) continue;
    out = out.replaceAll(secret, '*'.repeat(Buffer.byteLength(secret)));
  }
  return out;
}
