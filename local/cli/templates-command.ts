import { Command } from 'commander';
import type { DatabaseEngine, EngineName } from '../../functions/core/engine.js';
import { errorMessage } from '../../functions/core/errors.js';
import {
  type EnsureResult,
  RootImageManager,
  type TemplateDetail,
  templateDetail,
} from '../../functions/core/images.js';
import { rehashManifest, TemplateCatalog } from '../../functions/core/templates.js';
import { type ValidationLine, validateTemplates } from '../../functions/core/validate.js';
import { LocalEnvironment } from '../environment.js';
import { EXIT, printJson, table } from './output.js';
import { engineOption } from './program.js';

interface FilterOptions {
  engine?: EngineName[];
  version?: string;
  industry?: string;
  json?: boolean;
}

/** `clonectl templates list | show | validate | build | rehash` */
export function templatesCommand(): Command {
  const cmd = new Command('templates').description(
    'the root template catalogue (root_schemas/) and its root images',
  );

  cmd
    .command('list')
    .description('list every engine, version and industry the catalogue can build')
    .addOption(engineOption())
    .option('--version <version>', 'only this version, e.g. v1.1')
    .option('--industry <industry>', 'only this industry')
    .option('--json', 'print JSON')
    .action(async (opts: FilterOptions) => {
      const catalog = await TemplateCatalog.load();
      const rows = (opts.engine ?? catalog.engines).flatMap((engine) =>
        catalog.list({ engine, version: opts.version, industry: opts.industry }),
      );
      if (opts.json) return printJson(rows);
      console.log(
        table(
          ['ENGINE', 'VERSION', 'INDUSTRY', 'TABLES'],
          rows.map((r) => [r.engine, r.version, r.industry, r.tables.join(', ')]),
        ),
      );
    });

  cmd
    .command('show')
    .description('show one template: its scripts in order, their checksums, its tables and its root image')
    .argument('<engine>', 'postgresql | mysql | sqlite')
    .argument('<version>', 'e.g. v1.1')
    .argument('<industry>', 'healthcare | finance | technology')
    .option('--json', 'print JSON')
    .action(async (engine: string, version: string, industry: string, opts: { json?: boolean }) => {
      const catalog = await TemplateCatalog.load();
      const template = await catalog.resolve(engine, version, industry);
      const env = new LocalEnvironment();
      let result: TemplateDetail;
      try {
        result = await templateDetail(template, catalog, await env.tryEngine(template.engine).then(unwrap));
      } finally {
        await env.close();
      }
      if (opts.json) return printJson(result);
      console.log(
        `${result.engine} ${result.version} ${result.industry}  checksum ${result.checksum.slice(0, 16)}`,
      );
      console.log(`tables: ${result.tables.join(', ')}\n`);
      console.log(
        table(
          ['#', 'KIND', 'FILE', 'SHA256'],
          result.scripts.map((s, i) => [String(i + 1), s.kind, s.file, s.sha256.slice(0, 16)]),
        ),
      );
      const img = result.image;
      const detail =
        'name' in img ? ` (${img.name}, built ${img.builtAt})` : 'reason' in img ? ` (${img.reason})` : '';
      console.log(`\nimage: ${img.status}${detail}`);
    });

  cmd
    .command('validate')
    .description(
      'check checksums, then on real engines: (a) every template applies, (b) previous version + migration ' +
        'equals a fresh install, (c) the logical schema is the same on every engine',
    )
    .addOption(engineOption())
    .option('--json', 'print the report as JSON')
    .action(async (opts: FilterOptions) => {
      const catalog = await TemplateCatalog.load();
      const env = new LocalEnvironment();
      try {
        const selected = opts.engine ?? catalog.engines;
        const engines = await availableEngines(env, selected);
        const report = await validateTemplates(catalog, {
          engines,
          onLine: opts.json ? undefined : (line) => console.log(formatLine(line)),
        });
        const required = requiredEngines(selected).filter((e) => {
          const got = engines.get(e);
          return !got || 'reason' in got;
        });
        const ok = report.ok && required.length === 0;
        if (opts.json) printJson({ ...report, ok, missingRequired: required });
        else {
          for (const e of required) console.log(`FAIL ${e} is required (REQUIRE_MYSQL=1) but not reachable`);
          const counts = (s: string) => report.lines.filter((l) => l.status === s).length;
          console.log(
            `\n${ok ? 'valid' : 'INVALID'}: ${counts('ok')} ok, ${counts('fail')} failed, ${counts('skip')} skipped`,
          );
        }
        process.exitCode = ok ? EXIT.ok : EXIT.failed;
      } finally {
        await env.close();
      }
    });

  cmd
    .command('build')
    .description('build root images that are missing or whose scripts changed; reuse the rest')
    .addOption(engineOption())
    .option('--version <version>', 'only this version')
    .option('--industry <industry>', 'only this industry')
    .option('--force', 'rebuild even when the checksum is unchanged')
    .option('--json', 'print JSON')
    .action(async (opts: FilterOptions & { force?: boolean }) => {
      const catalog = await TemplateCatalog.load();
      const env = new LocalEnvironment();
      const results: (EnsureResult | { engine: EngineName; error: string })[] = [];
      try {
        for (const engine of opts.engine ?? catalog.engines) {
          const available = await env.tryEngine(engine);
          if ('reason' in available) {
            results.push({ engine, error: available.reason });
            continue;
          }
          const images = new RootImageManager(available.engine, catalog);
          for (const t of catalog.list({ engine, version: opts.version, industry: opts.industry })) {
            try {
              results.push(await images.ensure(t.version, t.industry, { force: opts.force }));
            } catch (error) {
              results.push({ engine, error: errorMessage(error) });
            }
          }
        }
      } finally {
        await env.close();
      }
      const failed = results.filter((r) => 'error' in r);
      process.exitCode = failed.length ? EXIT.failed : EXIT.ok;
      if (opts.json) return printJson(results);
      console.log(
        table(
          ['ENGINE', 'VERSION', 'INDUSTRY', 'IMAGE', 'ACTION', 'MS', 'FINGERPRINT'],
          results.map((r) =>
            'error' in r
              ? [r.engine, '', '', '', 'FAILED', '', r.error]
              : [
                  r.engine,
                  r.version,
                  r.industry,
                  r.name,
                  r.action,
                  r.durationMs.toFixed(0),
                  r.fingerprint.slice(0, 12),
                ],
          ),
        ),
      );
    });

  cmd
    .command('rehash')
    .description('maintainers: record the current checksum of every script in root_schemas/manifest.json')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const changed = await rehashManifest();
      if (opts.json) return printJson({ changed });
      console.log(
        changed.length
          ? `updated ${changed.length} checksum(s):\n  ${changed.join('\n  ')}`
          : 'all checksums current',
      );
    });

  return cmd;
}

/** Selected engines that must be reachable: MySQL when REQUIRE_MYSQL=1. */
function requiredEngines(selected: readonly EngineName[]): EngineName[] {
  return process.env.REQUIRE_MYSQL === '1' && selected.includes('mysql') ? ['mysql'] : [];
}

async function availableEngines(env: LocalEnvironment, names: readonly EngineName[]) {
  const out = new Map<EngineName, DatabaseEngine | { reason: string }>();
  for (const name of names) out.set(name, unwrap(await env.tryEngine(name)));
  return out;
}

function unwrap(r: { engine: DatabaseEngine } | { reason: string }): DatabaseEngine | { reason: string } {
  return 'engine' in r ? r.engine : r;
}

function formatLine(l: ValidationLine): string {
  const status = { ok: 'ok  ', fail: 'FAIL', skip: 'skip' }[l.status];
  const what = [l.engine === 'all' ? '' : l.engine, l.version ?? '', l.industry ?? '']
    .filter(Boolean)
    .join(' ');
  const fp = l.fingerprint ? `  ${l.fingerprint.slice(0, 12)}` : '';
  return `${status} ${l.check.padEnd(9)} ${what.padEnd(32)} ${l.detail}${fp}`;
}
