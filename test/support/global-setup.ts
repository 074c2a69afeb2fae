import mysql from 'mysql2/promise';
import pg from 'pg';
import { probeEngines, TEST_PREFIX } from './engines.js';

/** Tenant roles of earlier test runs (their databases are dropped just before). */
async function dropTestRoles(engine: string, pgUrl: string, mysqlUrl: string): Promise<void> {
  const like = `${TEST_PREFIX}%\\_r\\_%`;
  if (engine === 'postgresql') {
    const client = new pg.Client({ connectionString: pgUrl });
    await client.connect();
    try {
      const r = await client.query<{ rolname: string }>(
        'SELECT rolname FROM pg_roles WHERE rolname LIKE $1',
        [like],
      );
      for (const { rolname } of r.rows)
        await client.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(rolname)}`);
    } finally {
      await client.end();
    }
  } else if (engine === 'mysql') {
    const conn = await mysql.createConnection({ uri: mysqlUrl });
    try {
      const [rows] = await conn.query<mysql.RowDataPacket[]>(
        "SELECT User FROM mysql.user WHERE Host = '%' AND User LIKE ?",
        [like],
      );
      for (const row of rows) await conn.query(`DROP USER IF EXISTS ${mysql.escape(row.User)}@'%'`);
    } finally {
      await conn.end();
    }
  }
}

/**
 * Drops databases left by an earlier test run that was killed before its cleanup ran.
 * Only names starting with the test prefix are touched.
 */
export default async function setup(): Promise<void> {
  const { env, probes } = await probeEngines();
  try {
    for (const probe of Object.values(probes)) {
      if (!probe.engine || probe.name === 'sqlite') continue;
      for (const db of await probe.engine.listDatabases(TEST_PREFIX)) await probe.engine.dropDatabase(db);
      await dropTestRoles(probe.name, await env.postgresUrl(), env.mysqlUrl);
    }
  } finally {
    await env.close();
  }
}
