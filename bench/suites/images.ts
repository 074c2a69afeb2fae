import { PostgresEngine } from '../../functions/adapters/engines/postgres.js';
import type { DatabaseEngine, EngineName } from '../../functions/core/engine.js';
import { RootImageManager } from '../../functions/core/images.js';
import { TemplateCatalog } from '../../functions/core/templates.js';
import { LocalEnvironment } from '../../local/environment.js';
import type { SuiteContext, SuiteResult } from '../run.js';
import { round, summarize, timeEach } from '../stats.js';

const NS = 'cfbench';

/**
 * Root images: how long each image takes to build, and what a clone from the image costs
 * against replaying the scripts (the baseline), per engine, in the same run. For PostgreSQL
 * it also compares CREATE DATABASE strategies (WAL_LOG against FILE_COPY); for MySQL the
 * table copy is the "clone".
 */
export async function imagesSuite(ctx: SuiteContext): Promise<SuiteResult> {
  const n = ctx.quick ? 5 : 25;
  const catalog = await TemplateCatalog.load();
  const env = new LocalEnvironment({
    env: { ...process.env, CLONEFACTORY_HOME: process.env.CLONEFACTORY_HOME || '.clonefactory/bench' },
  });
  const rows: string[][] = [];
  const data: Record<string, unknown> = {};
  try {
    for (const name of catalog.engines) {
      const r = await env.tryEngine(name);
      if ('reason' in r) {
        ctx.log(`${name}: skipped (${r.reason})`);
        rows.push([name, 'skipped', r.reason, '', '', '', '']);
        continue;
      }
      const variants: [string, DatabaseEngine][] = [['clone', r.engine]];
      if (name === 'postgresql') {
        variants[0] = ['clone WAL_LOG', r.engine];
        variants.push([
          'clone FILE_COPY',
          new PostgresEngine({ url: await env.postgresUrl(), cloneStrategy: 'FILE_COPY' }),
        ]);
      }
      data[name] = await benchEngine(ctx, name, r.engine, variants, catalog, n, rows);
      for (const [, extra] of variants.slice(1)) await extra.close();
    }
  } finally {
    await env.close();
  }
  return {
    suite: 'images',
    table: { headers: ['ENGINE', 'MEASURE', 'N', 'P50_MS', 'P95_MS', 'BASELINE_P50_MS', 'RATIO_P50'], rows },
    data,
  };
}

async function benchEngine(
  ctx: SuiteContext,
  name: EngineName,
  engine: DatabaseEngine,
  variants: [string, DatabaseEngine][],
  catalog: TemplateCatalog,
  n: number,
  rows: string[][],
) {
  const images = new RootImageManager(engine, catalog, { namespace: NS });
  const builds: Record<string, number> = {};
  for (const t of catalog.list({ engine: name })) {
    const r = await images.ensure(t.version, t.industry, { force: true });
    builds[`${t.version}/${t.industry}`] = round(r.durationMs);
  }
  const buildTimes = Object.values(builds);
  const build = summarize(buildTimes);
  ctx.log(`${name}: built ${buildTimes.length} images, p50 ${build.p50.toFixed(1)} ms`);

  const [version, industry] = ['v1.1', 'finance'];
  const image = images.imageName(version, industry);
  const replay = await timeEach(n, async (i) => {
    await images.replay(version, industry, `${NS}_rp_${i}`);
  });
  const replaySummary = summarize(replay);
  rows.push([name, 'build image (each of 6)', String(buildTimes.length), f(build.p50), f(build.p95), '', '']);
  rows.push([
    name,
    `replay scripts ${version}/${industry}`,
    String(n),
    f(replaySummary.p50),
    f(replaySummary.p95),
    f(replaySummary.p50),
    '1.00',
  ]);
  const clones: Record<string, unknown> = {};
  for (const [label, variant] of variants) {
    const samples = await timeEach(n, async (i) => {
      await variant.cloneDatabase(image, `${NS}_cl_${label.replace(/\W+/g, '_').toLowerCase()}_${i}`);
    });
    const s = summarize(samples);
    clones[label] = { ...s, ratioP50: round(s.p50 / replaySummary.p50, 3) };
    rows.push([
      name,
      `${label} ${version}/${industry}`,
      String(n),
      f(s.p50),
      f(s.p95),
      f(replaySummary.p50),
      (s.p50 / replaySummary.p50).toFixed(2),
    ]);
    ctx.log(`${name}: ${label} p50 ${s.p50.toFixed(1)} ms vs replay ${replaySummary.p50.toFixed(1)} ms`);
  }
  for (const db of await engine.listDatabases(`${NS}_`))
    if (!db.startsWith(`${NS}_img_`)) await engine.dropDatabase(db);
  return { builds, build, replay: replaySummary, clones };
}

const f = (x: number) => x.toFixed(1);
