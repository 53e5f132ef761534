// schema.graphql is the contract clients and codegen read: it must be the printed Pothos schema.
import { readFile } from 'node:fs/promises';
import { buildSchema } from 'graphql';
import { describe, expect, it } from 'vitest';
import { printedSchema } from '../server/http/schema.js';

describe('schema.graphql', () => {
  it('is up to date (run `npm run schema:print` after changing GraphQL types)', async () => {
    const committed = await readFile(new URL('../schema.graphql', import.meta.url), 'utf8');
    expect(committed).toBe(printedSchema());
  });

  it('keeps the contract names of DESIGN.md', () => {
    const schema = buildSchema(printedSchema());
    const fields = (type: string) => Object.keys((schema.getType(type) as any).getFields());
    expect(fields('Query')).toEqual(expect.arrayContaining(['me', 'managedKeys', 'managedKey', 'auditLog']));
    expect(fields('Mutation')).toEqual(
      expect.arrayContaining([
        'createManagedKey',
        'updateManagedKey',
        'disableManagedKey',
        'enableManagedKey',
        'rotateManagedKeySecret',
      ]),
    );
    expect(fields('ManagedKey')).toEqual(
      expect.arrayContaining(
        (
          'id provider label maskedKey baseUrl defaultModel fallbackModels config dailyLimitUsd monthlyLimitUsd ' +
          'maxActiveLeases status activeLeaseCount spendTodayUsd spendThisMonthUsd lastUsedAt createdAt updatedAt'
        ).split(' '),
      ),
    );
    expect(fields('User')).toEqual(expect.arrayContaining(['id', 'email', 'role', 'tier', 'activeLeaseCount']));
    expect(fields('AuditEntry')).toEqual(
      expect.arrayContaining('id at actorId actorRole action targetType targetId details'.split(' ')),
    );
  });
});
