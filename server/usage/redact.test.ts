// The redactor on its own: every way of cutting an answer into chunks gives the same masked bytes.
import { describe, expect, it } from 'vitest';
import { createRedactor, redactText } from './redact.js';

const KEY = 'sk-or-v1-0123456789abcdef';
const TOKEN = 'mpk_lt_11111111-2222-4333-8444-555555555555.sig';
const masked = (s: string) => s.replaceAll(KEY, '*'.repeat(KEY.length)).replaceAll(TOKEN, '*'.repeat(TOKEN.length));

function through(chunks: string[], secrets = [KEY, TOKEN]): string {
  const redactor = createRedactor(secrets);
  const out = chunks.map((c) => redactor.read(Buffer.from(c)));
  out.push(redactor.end());
  return Buffer.concat(out).toString();
}

describe('createRedactor', () => {
  const answer = `{"error":"bad key ${KEY}","also":"sk-or-v1-","twice":"${KEY}${KEY}","token":"${TOKEN}"}s`;

  it('masks every secret, whichever two chunks the answer is cut into', () => {
    for (let cut = 0; cut <= answer.length; cut++) {
      expect(through([answer.slice(0, cut), answer.slice(cut)])).toBe(masked(answer));
    }
  });

  it('masks a secret spread over many one-byte chunks, and keeps lengths', () => {
    const out = through([...answer]);
    expect(out).toBe(masked(answer));
    expect(out.length).toBe(answer.length);
  });

  it('holds nothing back at the end of an event, and passes answers without secrets untouched', () => {
    const redactor = createRedactor([KEY]);
    const event = Buffer.from('data: {"choices":[]}\n\n');
    expect(redactor.read(event)).toBe(event);
    expect(redactor.end()).toHaveLength(0);
  });

  it("leaves a local server's placeholder key alone (shorter than 8 bytes)", () => {
    expect(through(['ollama says ollama'], ['ollama'])).toBe('ollama says ollama');
    expect(redactText('x-ray', ['x'])).toBe('x-ray');
    expect(redactText(`Bearer ${KEY}`, [KEY])).toBe(`Bearer ${'*'.repeat(KEY.length)}`);
  });
});
