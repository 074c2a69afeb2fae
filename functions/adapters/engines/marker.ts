import type { Marker } from '../../core/engine.js';
import { ValidationError } from '../../core/errors.js';

/** The internal table that holds a MySQL or SQLite database's marker. */
export const MARKER_TABLE = '_clonefactory_marker';

/** Tables the control plane keeps in a tenant database; tenant roles may read but not write them. */
export const INTERNAL_TABLE_PATTERN = /^_clonefactory/;

const KEY = /^[a-zA-Z][a-zA-Z0-9_]{0,40}$/;
const VALUE = /^[A-Za-z0-9_.:@+-]{0,200}$/;

/**
 * Markers hold ids, checksums and timestamps only. Keeping them to a small alphabet means
 * that nothing a tenant or a user typed can ride into a comment or an internal table.
 */
export function assertMarker(marker: Marker): Marker {
  for (const [key, value] of Object.entries(marker)) {
    if (!KEY.test(key)) throw new ValidationError(`invalid marker key ${JSON.stringify(key)}`, 'marker');
    if (typeof value !== 'string' || !VALUE.test(value))
      throw new ValidationError(`invalid marker value for ${key}`, 'marker');
  }
  return marker;
}

/** Parses a stored marker; anything that is not a flat object of strings reads as no marker. */
export function parseMarker(text: string | null | undefined): Marker | null {
  if (!text) return null;
  try {
    const value: unknown = JSON.parse(text);
    if (!value || typeof value !== 'object' || Array.isArray(value)) return null;
    const entries = Object.entries(value as Record<string, unknown>);
    if (!entries.every(([, v]) => typeof v === 'string')) return null;
    return Object.fromEntries(entries) as Marker;
  } catch {
    return null;
  }
}
