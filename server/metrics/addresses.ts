// Who may read /metrics without credentials: MPK_METRICS_ADDRESSES, a list of peer addresses.
import { BlockList, isIP } from 'node:net';

/** What MPK_METRICS_ADDRESSES means when it is not set. */
export const DEFAULT_METRICS_ADDRESSES = ['loopback'] as const;

/**
 * The addresses as a BlockList; throws on an entry that is neither `loopback`, an IP address nor
 * a CIDR range (config.ts parses with it, so a bad value stops the start).
 */
export function metricsAddressList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    if (entry === 'loopback') {
      list.addSubnet('127.0.0.0', 8, 'ipv4');
      list.addAddress('::1', 'ipv6');
      continue;
    }
    const [address = '', bits, extra] = entry.split('/');
    const family = isIP(address);
    const max = family === 4 ? 32 : 128;
    const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : Number.NaN;
    if (!family || extra !== undefined || !(prefix >= 0 && prefix <= max))
      throw new Error(`${JSON.stringify(entry)} is not loopback, an IP address or a CIDR range like 10.0.0.0/8`);
    list.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

/** MPK_METRICS_ADDRESSES as a list: absent means loopback, `none` means no address at all. */
export function parseMetricsAddresses(value: string | undefined): string[] {
  const entries = (value ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  if (entries.length === 0) return [...DEFAULT_METRICS_ADDRESSES];
  if (entries.length === 1 && entries[0]!.toLowerCase() === 'none') return [];
  return entries.map((entry) => (entry.toLowerCase() === 'loopback' ? 'loopback' : entry));
}
