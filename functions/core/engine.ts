import type { RawTable } from './fingerprint.js';

/** The engines the catalogue ships templates for. */
export const ENGINE_NAMES = ['postgresql', 'mysql', 'sqlite'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

/** A named SQL script; `file` is what errors report (a path relative to root_schemas/). */
export interface SqlScript {
  readonly file: string;
  readonly sql: string;
}

/**
 * Small string facts the control plane attaches to a database it made: the clone or image
 * it belongs to, a checksum. PostgreSQL keeps them in the database comment (readable without
 * connecting to the database); MySQL and SQLite in an internal table inside the database.
 */
export type Marker = Readonly<Record<string, string>>;

/**
 * What the control plane needs from a database engine. One implementation per engine in
 * functions/adapters/engines; core code depends only on this interface.
 * Every `name` is a physical database name and is validated by the implementation.
 */
export interface DatabaseEngine {
  readonly engine: EngineName;
  /** Where the engine is, for messages and logs. Never holds a password. */
  readonly location: string;

  /** Resolves when the server answers; throws EngineUnavailableError otherwise. */
  ping(): Promise<void>;
  databaseExists(name: string): Promise<boolean>;
  /** Names of the databases whose name starts with `prefix`, sorted. */
  listDatabases(prefix: string): Promise<string[]>;
  /** Creates an empty database; throws DatabaseExistsError when the name is taken. */
  createDatabase(name: string): Promise<void>;
  /** Drops the database if it exists. Idempotent. */
  dropDatabase(name: string): Promise<void>;
  /** Renames atomically: readers see the old name or the new one with all of its content, never half. */
  renameDatabase(from: string, to: string): Promise<void>;
  /**
   * Runs a multi-statement script statement by statement. On PostgreSQL and SQLite the
   * script runs in one transaction; MySQL commits DDL implicitly. A failure throws
   * ScriptExecutionError naming the file, statement and line.
   */
  applyScript(name: string, script: SqlScript): Promise<void>;
  /** The database's tables, columns, keys, indexes and checks, as the engine reports them. */
  introspect(name: string): Promise<RawTable[]>;
  readMarker(name: string): Promise<Marker | null>;
  writeMarker(name: string, marker: Marker): Promise<void>;
  /**
   * Copies a database with the engine's fastest correct mechanism: PostgreSQL
   * `CREATE DATABASE ... TEMPLATE`, a file copy for SQLite, a table-by-table copy for MySQL.
   * The source's marker is not copied; `marker`, when given, becomes the target's.
   * All or nothing: on failure no target is left. Throws DatabaseExistsError when the target exists.
   */
  cloneDatabase(source: string, target: string, marker?: Marker): Promise<void>;
  /**
   * Makes a finished root image read-only for everyone but the control plane (PostgreSQL:
   * a template database that takes no connections). `dropDatabase` undoes it as needed.
   */
  sealImage(name: string): Promise<void>;
  /** Closes pools and handles. */
  close(): Promise<void>;
}
