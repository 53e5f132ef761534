// Free-text arguments (filters, searches): bounded and free of control characters before they
// reach SQL, so that a NUL byte or a megabyte of text is a BAD_USER_INPUT, not a database error.
import { badInput } from './errors.js';

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
const CONTROL = /[\u0000-\u001f\u007f]/;

/** A trimmed filter string, null when absent or blank; refused when too long or holding control characters. */
export function filterText(value: string | null | undefined, field: string, max = 256): string | null {
  if (value == null) return null;
  const text = value.trim();
  if (text.length > max) throw badInput(field, `${field} must be at most ${max} characters`);
  if (CONTROL.test(text)) throw badInput(field, `${field} must not contain control characters`);
  return text || null;
}
