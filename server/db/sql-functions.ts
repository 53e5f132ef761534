// The rules that live in SQL: one file per function in prisma/sql/, named after its rule. The files
// are the definitions; migrations carry copies (`npm run db:migration` writes them), and
// `driftedFunctions` tells which functions of a database differ from their files.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { projectRoot } from '../core/paths.js';

export const sqlDir = path.join(projectRoot, 'prisma/sql');

/**
 * Every function, in an order that creates each after those it calls (an SQL-language function's
 * body is checked when it is created).
 */
export const SQL_FUNCTIONS = [
  'mpk_window_spend',
  'mpk_key_under_limits',
  'mpk_key_has_mint_room',
  'mpk_key_has_room',
  'mpk_minted_limit',
  'mpk_provider_job',
  'mpk_lease_over_cap',
  'mpk_lease_refusal',
  'mpk_user_has_room',
  'mpk_audit_each',
  'mpk_audit',
  'mpk_see_user',
  'mpk_grant_lease',
  'mpk_record_usage',
  'mpk_month_partition',
] as const;
export type SqlFunction = (typeof SQL_FUNCTIONS)[number];

export const readFunctionFile = (name: SqlFunction) => readFile(path.join(sqlDir, `${name}.sql`), 'utf8');

/** Every function's file, in creation order. */
export async function readFunctionFiles(): Promise<{ name: SqlFunction; sql: string }[]> {
  return Promise.all(SQL_FUNCTIONS.map(async (name) => ({ name, sql: await readFunctionFile(name) })));
}

const CANON = 'mpk_canon';

/**
 * The functions whose definition in the database (schema public) differs from its file, or that
 * the database lacks. The files are created in a scratch schema inside a transaction that is rolled
 * back, and PostgreSQL's own rendering of both (`pg_get_functiondef`) is compared: formatting of
 * the file outside the body does not matter, any change to a signature or a body does.
 */
export async function driftedFunctions(client: pg.Client): Promise<SqlFunction[]> {
  const files = await readFunctionFiles();
  await client.query('BEGIN');
  try {
    await client.query(`CREATE SCHEMA ${CANON}`);
    await client.query(`SET LOCAL search_path TO ${CANON}, public`);
    for (const file of files) await client.query(file.sql);
    const { rows } = await client.query<{ schema: string; name: string; def: string }>(
      `SELECT n.nspname AS schema, p.proname AS name, pg_get_functiondef(p.oid) AS def
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname IN ('public', $1) AND p.proname = ANY($2)`,
      [CANON, [...SQL_FUNCTIONS]],
    );
    const defs = (schema: string, name: string) =>
      rows
        .filter((r) => r.schema === schema && r.name === name)
        .map((r) => r.def.replace(`${schema}.${name}(`, `${name}(`))
        .sort()
        .join('\n');
    return SQL_FUNCTIONS.filter((name) => defs('public', name) !== defs(CANON, name));
  } finally {
    await client.query('ROLLBACK');
  }
}
