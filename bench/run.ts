/**
 * Benchmark runner: `npm run bench -- <suite> [--quick]`.
 * Each suite measures its subject against a baseline in the same run and reports ratios,
 * writes bench/results/<suite>.json and prints a table. Not part of `npm test`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { apiSuite } from './suites/api.js';
import { authorizerSuite } from './suites/authorizer.js';
import { cloneSuite } from './suites/clone.js';
import { dedicatedSuite } from './suites/dedicated.js';
import { fleetSuite } from './suites/fleet.js';
import { healthSuite } from './suites/health.js';
import { imagesSuite } from './suites/images.js';

export interface SuiteContext {
  readonly quick: boolean;
  /** Only these engines, where the suite measures per engine (`--engine`, repeatable). */
  readonly engines?: readonly string[];
  readonly log: (message: string) => void;
}

export interface SuiteResult {
  readonly suite: string;
  readonly table: { readonly headers: readonly string[]; readonly rows: readonly (readonly string[])[] };
  readonly data: unknown;
}

const SUITES: Record<string, (ctx: SuiteContext) => Promise<SuiteResult>> = {
  images: imagesSuite,
  clone: cloneSuite,
  dedicated: dedicatedSuite,
  fleet: fleetSuite,
  health: healthSuite,
  authorizer: authorizerSuite,
  api: apiSuite,
};

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    quick: { type: 'boolean' },
    help: { type: 'boolean' },
    engine: { type: 'string', multiple: true },
  },
});
const name = positionals[0];
if (values.help || !name || !SUITES[name]) {
  console.log(
    `usage: npm run bench -- <suite> [--quick] [--engine <name>...]\nsuites: ${Object.keys(SUITES).join(', ')}`,
  );
  process.exit(values.help ? 0 : 2);
}

const started = new Date();
const result = await (SUITES[name] as (ctx: SuiteContext) => Promise<SuiteResult>)({
  quick: values.quick ?? false,
  engines: values.engine,
  log: (m) => console.error(`[bench] ${m}`),
});
const widths = result.table.headers.map((h, i) =>
  Math.max(h.length, ...result.table.rows.map((r) => (r[i] ?? '').length)),
);
for (const row of [result.table.headers, ...result.table.rows])
  console.log(row.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  '));
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
// A run limited to some engines writes a file of its own, beside the full run's.
const suffix = values.engine?.length ? `-${[...values.engine].sort().join('-')}` : '';
const file = new URL(`./results/${name}${suffix}.json`, import.meta.url);
await writeFile(
  file,
  `${JSON.stringify({ suite: name, quick: values.quick ?? false, startedAt: started.toISOString(), node: process.version, data: result.data }, null, 2)}\n`,
);
console.error(`[bench] wrote ${file.pathname}`);
