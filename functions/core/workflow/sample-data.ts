import { createHash } from 'node:crypto';
import { SEED_TABLE } from '../control-tables.js';
import type { SqlExecutor } from '../engine.js';

/** A small, fast, seedable PRNG (mulberry32): the same tenant id always yields the same rows. */
function prng(seed: string): () => number {
  let a = createHash('sha256').update(seed).digest().readUInt32LE(0);
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIRST = ['Ada', 'Grace', 'Linus', 'Barbara', 'Ken', 'Margaret', 'Dennis', 'Frances', 'Edsger', 'Radia'];
const LAST = [
  'Lovelace',
  'Hopper',
  'Torvalds',
  'Liskov',
  'Thompson',
  'Hamilton',
  'Ritchie',
  'Allen',
  'Dijkstra',
  'Perlman',
];
const ROLES = ['user', 'user', 'analyst', 'admin'] as const;
const STATUSES = ['pending', 'paid', 'shipped', 'delivered', 'cancelled'] as const;
const BATCH = 200;

/**
 * Inserts `size` sample users (and, where the template has them, customers) and `size`
 * orders against the template's products, all derived from the tenant id. Runs inside the
 * caller's transaction; a second call for the same tenant does nothing.
 */
export async function populateSampleData(
  tx: SqlExecutor,
  tenantId: string,
  size: number,
  tables: readonly string[],
): Promise<{ inserted: boolean; users: number; orders: number }> {
  // The control tables are Apply schema's (ensureControlTables): no DDL here, since on MySQL
  // DDL commits the transaction implicitly, and the rows below would then commit one by one,
  // so that a process killed midway left rows without the seed record and the next attempt
  // inserted them again (a duplicate key, found by the reliability suite's SIGKILL runs).
  const done = await tx.query(`SELECT size FROM ${SEED_TABLE} WHERE tenant_id = ?`, [tenantId]);
  if (done.length > 0) return { inserted: false, users: 0, orders: 0 };
  const random = prng(tenantId);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const domain = `${tenantId}.example`;
  const users = Array.from({ length: size }, (_, i) => ({
    email: `sample-${String(i + 1).padStart(5, '0')}@${domain}`,
    name: `${pick(FIRST)} ${pick(LAST)}`,
    role: pick(ROLES),
  }));
  await insertRows(
    tx,
    'users',
    ['email', 'full_name', 'role'],
    users.map((u) => [u.email, u.name, u.role]),
  );
  const withCustomers = tables.includes('customers');
  if (withCustomers)
    await insertRows(
      tx,
      'customers',
      ['email', 'full_name'],
      users.map((u) => [u.email, u.name]),
    );
  const userIds = await tx.query<{ id: number | string; email: string }>(
    'SELECT id, email FROM users WHERE email LIKE ?',
    [`%@${domain}`],
  );
  const customerIds = withCustomers
    ? new Map(
        (
          await tx.query<{ id: number | string; email: string }>(
            'SELECT id, email FROM customers WHERE email LIKE ?',
            [`%@${domain}`],
          )
        ).map((c) => [c.email, c.id]),
      )
    : new Map<string, number | string>();
  const products = await tx.query<{ id: number | string; price: number | string }>(
    'SELECT id, price FROM products ORDER BY id',
  );
  const orders: unknown[][] = [];
  if (products.length > 0 && userIds.length > 0) {
    for (let i = 0; i < size; i++) {
      const user = pick(userIds);
      const product = pick(products);
      const quantity = 1 + Math.floor(random() * 5);
      const total = (Number(product.price) * quantity).toFixed(2);
      const row: unknown[] = [user.id, product.id, quantity, total, pick(STATUSES)];
      if (withCustomers) row.push(customerIds.get(user.email) ?? null);
      orders.push(row);
    }
    const columns = [
      'user_id',
      'product_id',
      'quantity',
      'total',
      'status',
      ...(withCustomers ? ['customer_id'] : []),
    ];
    await insertRows(tx, 'orders', columns, orders);
  }
  await tx.query(`INSERT INTO ${SEED_TABLE} (tenant_id, size, seeded_at) VALUES (?, ?, ?)`, [
    tenantId,
    size,
    new Date().toISOString(),
  ]);
  return { inserted: true, users: users.length, orders: orders.length };
}

/** Multi-row INSERTs in batches; table and column names are constants of this module. */
async function insertRows(
  tx: SqlExecutor,
  table: string,
  columns: readonly string[],
  rows: readonly unknown[][],
): Promise<void> {
  for (let i = 0; i < rows.length; i += BATCH) {
    const batch = rows.slice(i, i + BATCH);
    const placeholders = batch.map(() => `(${columns.map(() => '?').join(', ')})`).join(', ');
    await tx.query(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${placeholders}`, batch.flat());
  }
}
