// Every operation the dashboard sends is one the server accepts: valid against the schema and
// within its depth, cost, alias and token limits. Queries run as they are; mutations are sent
// without their (required) variables, so they are validated and never executed; subscriptions
// are opened over WebSocket and closed again.
import { type DocumentNode, type OperationDefinitionNode, print } from 'graphql';
import { describe, expect, it } from 'vitest';
import * as generated from '../web/src/gql/graphql.js';
import { type TestServer, withTestServer } from './support/server.js';
import { collect, settle, wsClient } from './support/ws.js';

let server: TestServer;
let admin: string;

const operations = Object.entries(generated)
  .filter(
    ([name, value]) =>
      name.endsWith('Document') && typeof value === 'object' && (value as DocumentNode).kind === 'Document',
  )
  .map(([name, value]) => {
    const document = value as DocumentNode;
    const operation = document.definitions.find((d): d is OperationDefinitionNode => d.kind === 'OperationDefinition');
    return { name, document, operation };
  })
  .filter((o): o is typeof o & { operation: OperationDefinitionNode } => Boolean(o.operation));

withTestServer({ scheduler: false, roles: 'docs' }, (s) => ({ server, admin } = s));

describe('dashboard documents', () => {
  it('are generated for every page (codegen ran)', () => {
    const names = operations.map((o) => o.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'MeDocument',
        'LeaseListDocument',
        'KeyDetailDocument',
        'OverviewDocument',
        'LiveLeaseEventsDocument',
      ]),
    );
  });

  it("pass the server's validation and limits", async () => {
    const refused: string[] = [];
    for (const { name, document, operation } of operations.filter((o) => o.operation.operation !== 'subscription')) {
      if (operation.operation === 'mutation') {
        // Unexecutable by construction: every dashboard mutation has a required variable.
        expect(
          operation.variableDefinitions?.some((v) => v.type.kind === 'NonNullType'),
          name,
        ).toBe(true);
      }
      const res = await server.gql(print(document), {}, admin);
      for (const error of res.errors ?? []) {
        const missingVariable = /Variable "\$\w+" of required type .* was not provided/.test(error.message);
        if (!missingVariable && error.extensions?.code !== 'NOT_FOUND') refused.push(`${name}: ${error.message}`);
      }
    }
    expect(refused).toEqual([]);
  });

  it('subscriptions are accepted over WebSocket', async () => {
    const client = wsClient(server.url, admin);
    try {
      for (const { name, document } of operations.filter((o) => o.operation.operation === 'subscription')) {
        const stream = collect(client, print(document));
        await settle(300);
        expect(stream.errors, name).toEqual([]);
        stream.dispose();
      }
    } finally {
      await client.dispose();
    }
  });
});
