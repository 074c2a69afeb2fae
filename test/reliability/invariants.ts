import mysql from 'mysql2/promise';
import pg from 'pg';
import { parseCredentials } from '../../functions/core/secrets.js';
import type { CloneState } from '../../functions/core/tenants.js';
import { APP_ROLES } from '../../functions/core/tenants.js';
import type { LocalControlPlane } from '../../local/control-plane.js';

/**
 * The system's invariants, checked from the outside (the engines' own catalogues, the secret
 * store, the registry), not through the reconciler, which the suites also exercise:
 * - every artefact that carries a clone id belongs to an entry that is READY or in flight;
 * - every READY entry opens, with each of its three logins;
 * - no execution is still running.
 */

export const LIVE: readonly CloneState[] = ['PENDING', 'CREATING', 'READY', 'MOVING', 'DELETING'];

export interface Artefact {
  readonly kind: 'database' | 'role' | 'secret';
  readonly name: string;
  readonly where: string;
  readonly cloneId: string;
}

export interface InvariantReport {
  readonly artefacts: number;
  /** Artefacts whose clone has no READY or in-flight entry. */
  readonly strays: Artefact[];
  /** READY entries a login of theirs cannot open. */
  readonly unopenable: { tenantId: string; role: string; error: string }[];
  readonly running: string[];
  readonly states: Record<string, number>;
}

const CLONE_ID = /^[0-9a-f]{12}$/;

/** Every database, role and secret of this plane's namespace that names a clone. */
export async function listArtefacts(plane: LocalControlPlane): Promise<Artefact[]> {
  const ns = plane.deps.namespace;
  const out: Artefact[] = [];
  for (const name of plane.deps.catalog.engines) {
    const r = await plane.env.tryEngine(name);
    if (!('engine' in r)) continue;
    const engine = r.engine;
    for (const db of [
      ...(await engine.listDatabases(`${ns}_t_`)),
      ...(await engine.listDatabases(`${ns}_branch_`)),
    ]) {
      // The name carries the clone id; the marker too (a database without one is someone else's).
      const fromName = db.slice(db.lastIndexOf('_') + 1);
      const marker = await engine.readMarker(db).catch(() => null);
      const cloneId = marker?.cloneId ?? fromName;
      out.push({ kind: 'database', name: db, where: engine.location, cloneId });
    }
  }
  const rolePattern = `${ns}\\_r\\_%`;
  const pgClient = new pg.Client({ connectionString: await plane.env.postgresUrl() });
  await pgClient.connect();
  try {
    const roles = await pgClient.query<{ rolname: string }>(
      'SELECT rolname FROM pg_roles WHERE rolname LIKE $1',
      [rolePattern],
    );
    for (const { rolname } of roles.rows)
      out.push({ kind: 'role', name: rolname, where: 'postgresql', cloneId: roleCloneId(ns, rolname) });
  } finally {
    await pgClient.end();
  }
  const my = await mysql.createConnection({ uri: plane.env.mysqlUrl }).catch(() => null);
  if (my)
    try {
      const [rows] = await my.query<mysql.RowDataPacket[]>('SELECT User FROM mysql.user WHERE User LIKE ?', [
        rolePattern,
      ]);
      for (const row of rows)
        out.push({ kind: 'role', name: row.User, where: 'mysql', cloneId: roleCloneId(ns, row.User) });
    } finally {
      await my.end();
    }
  for (const id of await plane.deps.secrets.list(`${ns}/clones/`)) {
    const tags = await plane.deps.secrets.tags(id);
    out.push({
      kind: 'secret',
      name: id,
      where: 'secrets',
      cloneId: tags?.cloneId ?? id.split('/').pop() ?? '',
    });
  }
  return out;
}

function roleCloneId(ns: string, role: string): string {
  const id = role.slice(`${ns}_r_`.length, `${ns}_r_`.length + 12);
  return CLONE_ID.test(id) ? id : role;
}

export async function checkInvariants(plane: LocalControlPlane): Promise<InvariantReport> {
  const records = await plane.deps.registry.list();
  const live = new Set(records.filter((r) => LIVE.includes(r.state)).map((r) => r.cloneId));
  const artefacts = await listArtefacts(plane);
  const strays = artefacts.filter((a) => !live.has(a.cloneId));
  const unopenable: InvariantReport['unopenable'] = [];
  for (const r of records.filter((x) => x.state === 'READY')) {
    const stored = r.secretId ? await plane.deps.secrets.get(r.secretId) : null;
    if (!stored || !r.database || !r.secretId) {
      unopenable.push({ tenantId: r.tenantId, role: '*', error: 'no secret or database in the entry' });
      continue;
    }
    const credentials = parseCredentials(stored, r.secretId);
    const engine = await plane.deps.engineFor(r);
    for (const role of APP_ROLES) {
      const login = credentials.roles[role];
      try {
        if (!login) throw new Error('no login stored');
        const session = await engine.openSession(r.database, login);
        try {
          await session.query('SELECT 1 AS ok');
        } finally {
          await session.close();
        }
      } catch (error) {
        unopenable.push({ tenantId: r.tenantId, role, error: (error as Error).message });
      }
    }
  }
  const running = (await plane.runner.list()).filter((e) => e.status === 'RUNNING').map((e) => e.name);
  const states: Record<string, number> = {};
  for (const r of records) states[r.state] = (states[r.state] ?? 0) + 1;
  return { artefacts: artefacts.length, strays, unopenable, running, states };
}
