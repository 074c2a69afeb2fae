import type { DatabaseEngine, EngineName } from './engine.js';
import { errorMessage } from './errors.js';
import { type CanonicalSchema, diffSchemas, type Fingerprint, logicalSchema } from './fingerprint.js';
import { RootImageManager } from './images.js';
import type { TemplateCatalog } from './templates.js';

export type ValidationCheck = 'files' | 'applies' | 'migration' | 'parity';
export type ValidationStatus = 'ok' | 'fail' | 'skip';

/** One line of a validation report: a check on one engine, version and industry (or across engines). */
export interface ValidationLine {
  readonly check: ValidationCheck;
  readonly status: ValidationStatus;
  readonly engine: EngineName | 'all';
  readonly version?: string;
  readonly industry?: string;
  readonly detail: string;
  readonly fingerprint?: string;
}

export interface ValidationReport {
  readonly ok: boolean;
  readonly lines: readonly ValidationLine[];
}

export interface ValidateOptions {
  /** Engines to validate, or the reason each one is unavailable; engines not in the map are not checked. */
  readonly engines: ReadonlyMap<EngineName, DatabaseEngine | { reason: string }>;
  readonly namespace?: string;
  /** Called as each line is decided, for live output. */
  readonly onLine?: (line: ValidationLine) => void;
}

/**
 * Runs the catalogue's invariants against real engines:
 * (a) every template applies cleanly;
 * (b) for each engine and industry, the previous version plus its migration fingerprints
 *     exactly like a fresh install of the next version;
 * (c) for each version and industry, the logical schema is the same on every engine.
 * Works in scratch databases that it always drops.
 */
export async function validateTemplates(
  catalog: TemplateCatalog,
  options: ValidateOptions,
): Promise<ValidationReport> {
  const lines: ValidationLine[] = [];
  const emit = (line: ValidationLine) => {
    lines.push(line);
    options.onLine?.(line);
  };

  const fileProblems = await catalog.verifyFiles();
  if (fileProblems.length)
    for (const p of fileProblems) emit({ check: 'files', status: 'fail', engine: 'all', detail: p });
  else
    emit({ check: 'files', status: 'ok', engine: 'all', detail: 'every file matches its manifest checksum' });

  const fresh = new Map<string, Fingerprint>();
  const key = (e: EngineName, v: string, i: string) => `${e}/${v}/${i}`;

  await Promise.all(
    catalog.engines.map(async (engineName) => {
      const available = options.engines.get(engineName);
      if (!available) return;
      if ('reason' in available) {
        emit({ check: 'applies', status: 'skip', engine: engineName, detail: available.reason });
        return;
      }
      const images = new RootImageManager(available, catalog, { namespace: options.namespace });
      for (const version of catalog.versions)
        for (const industry of catalog.industries) {
          const fp = await scratch(images, `${version.replace('.', '_')}_${industry}`, async (db) => {
            await images.replay(version, industry, db);
            return images.fingerprintOf(db);
          });
          if ('error' in fp) {
            emit({
              check: 'applies',
              status: 'fail',
              engine: engineName,
              version,
              industry,
              detail: fp.error,
            });
            continue;
          }
          fresh.set(key(engineName, version, industry), fp.value);
          emit({
            check: 'applies',
            status: 'ok',
            engine: engineName,
            version,
            industry,
            detail: `${fp.value.schema.tables.length} tables`,
            fingerprint: fp.value.hash,
          });
        }
      for (const [index, to] of catalog.versions.entries()) {
        const from = catalog.versions[index - 1];
        if (!from) continue;
        for (const industry of catalog.industries) {
          const expected = fresh.get(key(engineName, to, industry));
          const base = {
            check: 'migration' as const,
            engine: engineName,
            version: `${from}->${to}`,
            industry,
          };
          if (!expected) {
            emit({ ...base, status: 'skip', detail: `fresh ${to} did not apply` });
            continue;
          }
          const migrated = await scratch(images, `m_${industry}`, async (db) => {
            await images.replay(from, industry, db, await catalog.migrationPath(engineName, from, to));
            return images.fingerprintOf(db);
          });
          if ('error' in migrated) emit({ ...base, status: 'fail', detail: migrated.error });
          else if (migrated.value.hash === expected.hash)
            emit({ ...base, status: 'ok', detail: `equals fresh ${to}`, fingerprint: migrated.value.hash });
          else
            emit({
              ...base,
              status: 'fail',
              detail: `differs from fresh ${to}: ${diffSchemas(expected.schema, migrated.value.schema).join('; ')}`,
            });
        }
      }
    }),
  );

  for (const version of catalog.versions)
    for (const industry of catalog.industries) {
      const present = catalog.engines
        .map((e) => [e, fresh.get(key(e, version, industry))] as const)
        .filter((x): x is readonly [EngineName, Fingerprint] => x[1] !== undefined);
      const base = { check: 'parity' as const, engine: 'all' as const, version, industry };
      if (present.length < 2) {
        emit({
          ...base,
          status: 'skip',
          detail: `needs two engines, have ${present.map(([e]) => e).join(', ') || 'none'}`,
        });
        continue;
      }
      const [first, ...rest] = present as [
        readonly [EngineName, Fingerprint],
        ...(readonly [EngineName, Fingerprint])[],
      ];
      const reference: CanonicalSchema = logicalSchema(first[1].schema);
      const differences = rest.flatMap(([e, fp]) =>
        diffSchemas(reference, logicalSchema(fp.schema)).map((d) => `${e} vs ${first[0]}: ${d}`),
      );
      const names = present.map(([e]) => e).join(' = ');
      const missing = [...options.engines.keys()].filter((e) => !present.some(([p]) => p === e));
      const note = missing.length ? ` (without ${missing.join(', ')})` : '';
      emit(
        differences.length
          ? { ...base, status: 'fail', detail: differences.join('; ') }
          : { ...base, status: 'ok', detail: `${names}${note}` },
      );
    }

  return { ok: lines.every((l) => l.status !== 'fail'), lines };
}

async function scratch<T>(
  images: RootImageManager,
  label: string,
  fn: (db: string) => Promise<T>,
): Promise<{ value: T } | { error: string }> {
  const db = images.scratchName('val', label);
  try {
    return { value: await fn(db) };
  } catch (error) {
    return { error: errorMessage(error) };
  } finally {
    await images.engine.dropDatabase(db);
  }
}
