// Row ids are UUIDs: anything else cannot name a row, and is answered without asking the database.
import { randomBytes } from 'node:crypto';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (id: string) => UUID.test(id);

let lastMs = 0;
let lastCounter = 0;

/**
 * A time-ordered UUID (version 7, RFC 9562): 48 bits of Unix milliseconds, then 12 bits of a
 * counter seeded at random each millisecond (method 1 of the RFC's section 6.2), then 62 random
 * bits. Ids made later sort after earlier ones, also within one millisecond of this process, so a
 * table keyed by them (Lease, ManagedKey) is appended to at its primary key index's right edge
 * instead of written all over it, as random (v4) ids are. Time is the real clock's, never a test's
 * injected one: the order is about when rows are written. A clock that steps back, or a counter
 * that runs out within a millisecond, borrows the next millisecond rather than go out of order.
 */
export function uuidv7(nowMs = Date.now()): string {
  if (nowMs > lastMs) {
    lastMs = nowMs;
    lastCounter = randomBytes(2).readUInt16BE() & 0x7ff;
  } else if (++lastCounter > 0xfff) {
    lastMs++;
    lastCounter = randomBytes(2).readUInt16BE() & 0x7ff;
  }
  const bytes = randomBytes(16);
  bytes.writeUIntBE(lastMs, 0, 6);
  bytes[6] = 0x70 | (lastCounter >> 8);
  bytes[7] = lastCounter & 0xff;
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
