// USD amounts: exact decimals, never floats. Limits, caps and prices have six decimals at most;
// spend (the ledger, lease totals, key windows) twelve, since providers report costs below a
// micro-dollar. The Decimal class is the one Prisma returns for numeric columns (from its runtime
// library, not from our db layer), so that amounts read from rows and amounts made here are the
// same kind of value.
import { Decimal } from '@prisma/client/runtime/client';
import { badInput } from './errors.js';

export { Decimal };
export const MAX_USD = new Decimal(1_000_000);

/** Parses a non-negative USD amount with at most `decimals` (6) decimals, naming `field` when it is not. */
export function parseUsd(
  value: string | number,
  field: string,
  options: { max?: Decimal; decimals?: number } = {},
): Decimal {
  const decimals = options.decimals ?? 6;
  const text = typeof value === 'number' ? String(value) : value.trim();
  if (!/^-?\d+(\.\d+)?$/.test(text)) throw badInput(field, `${field} must be a decimal number`);
  const amount = new Decimal(text);
  if (amount.isNegative()) throw badInput(field, `${field} must not be negative`);
  if (amount.decimalPlaces() > decimals) throw badInput(field, `${field} has more than ${decimals} decimals`);
  const max = options.max ?? MAX_USD;
  if (amount.greaterThan(max)) throw badInput(field, `${field} must be at most ${max.toString()}`);
  return amount;
}

/** "12.5" -> "12.50", "0.000156106780" -> "0.00015610678": two decimals at least, twelve at most. */
export function formatUsd(value: Decimal | string | number): string {
  const fixed = new Decimal(value).toFixed(12);
  return fixed.replace(/(\.\d\d\d*?)0+$/, '$1');
}
