// `npm run schema:print`: rewrites schema.graphql from the Pothos schema.
import { writeFile } from 'node:fs/promises';
import { printedSchema } from '../http/schema.js';

await writeFile(new URL('../../schema.graphql', import.meta.url), printedSchema());
console.log('Wrote schema.graphql');
