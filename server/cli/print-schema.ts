// `npm run schema:print`: rewrites schema.graphql from the Pothos schema.
import { writeFile } from 'node:fs/promises';
import { printedSchema } from '../http/schema.js';
import { cliArgs } from './args.js';

cliArgs('usage: npm run schema:print\n\nRewrites schema.graphql from the Pothos schema in server/graphql/.', {});

await writeFile(new URL('../../schema.graphql', import.meta.url), printedSchema());
console.log('Wrote schema.graphql');
