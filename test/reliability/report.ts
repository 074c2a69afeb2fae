import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIGURES_DIR, PROFILE, type SuiteFigures } from './profile.js';

/** The full profile's figures (committed, the ones docs/RELIABILITY.md shows); a quick run's go beside them. */
const RESULTS = (profile: string) =>
  fileURLToPath(
    new URL(
      `../../bench/results/${profile === 'full' ? 'reliability' : `reliability-${profile}`}.json`,
      import.meta.url,
    ),
  );
const DOCS = fileURLToPath(new URL('../../docs/RELIABILITY.md', import.meta.url));
const START = '<!-- reliability:table:start -->';
const END = '<!-- reliability:table:end -->';
const ORDER = ['chaos', 'chaos-kill', 'concurrency', 'isolation', 'jwt-fuzz', 'bad-input', 'load'];

/** Global setup of the reliability run: figures of an earlier run must not reach this report. */
export async function setup(): Promise<void> {
  rmSync(FIGURES_DIR, { recursive: true, force: true });
  mkdirSync(FIGURES_DIR, { recursive: true });
}

/**
 * Global teardown: the suites' figures become bench/results/reliability.json (full profile)
 * or reliability-quick.json and, for the full profile (or with RELIABILITY_WRITE_DOCS=1), the
 * table in docs/RELIABILITY.md.
 */
export async function teardown(): Promise<void> {
  if (!existsSync(FIGURES_DIR)) return;
  const suites = readdirSync(FIGURES_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(FIGURES_DIR, f), 'utf8')) as SuiteFigures)
    .sort((a, b) => rank(a.suite) - rank(b.suite));
  if (suites.length === 0) return;
  const report = {
    profile: PROFILE.name,
    seed: PROFILE.seed,
    node: process.version,
    finishedAt: new Date().toISOString(),
    command: reproduce(),
    suites,
  };
  writeFileSync(RESULTS(PROFILE.name), `${JSON.stringify(report, null, 1)}\n`);
  if (PROFILE.name === 'full' || process.env.RELIABILITY_WRITE_DOCS === '1') writeDocsTable(report);
  console.log(`\nreliability (${PROFILE.name}, seed ${PROFILE.seed}): ${RESULTS(PROFILE.name)}\n`);
  console.log(markdownTable(suites));
}

const rank = (suite: string) => {
  const i = ORDER.indexOf(suite);
  return i === -1 ? ORDER.length : i;
};

function reproduce(): string {
  const seed = process.env.RELIABILITY_SEED ? ` RELIABILITY_SEED=${PROFILE.seed}` : '';
  return `REQUIRE_MYSQL=1 RELIABILITY_PROFILE=${PROFILE.name}${seed} npm run test:reliability`;
}

const n = (x: number | undefined) => (x === undefined ? '–' : x.toLocaleString('en-US'));

export function markdownTable(suites: readonly SuiteFigures[]): string {
  const rows = suites.map((s) => {
    const load = s.load
      ? `${n(s.load.requests)} req in ${s.load.seconds} s, ${s.load.throughputPerSecond.toFixed(0)}/s; p50 ${s.load.p50Ms.toFixed(1)} ms, p95 ${s.load.p95Ms.toFixed(1)} ms, p99 ${s.load.p99Ms.toFixed(1)} ms; RSS max ${s.load.rssMaxMb.toFixed(0)} MB; connections max ${s.load.connectionsMax} of ${s.load.connectionCap}; statuses ${Object.entries(
          s.load.statuses,
        )
          .map(([k, v]) => `${k}: ${n(v)}`)
          .join(', ')}`
      : '–';
    const bad = s.badInputsTried === undefined ? '–' : `${n(s.badInputsRejected)} of ${n(s.badInputsTried)}`;
    return `| ${s.suite} | ${n(s.runs)} | ${n(s.faultsInjected)} | ${n(s.orphans)} | ${n(s.crossTenantSuccesses)} | ${n(s.jwtAllows)} | ${bad} | ${load} |`;
  });
  return [
    '| suite | runs | faults injected | orphans | cross-tenant successes | JWT allows | bad inputs rejected | load |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}

function writeDocsTable(report: {
  profile: string;
  seed: number;
  finishedAt: string;
  command: string;
  suites: SuiteFigures[];
}): void {
  if (!existsSync(DOCS)) return;
  const text = readFileSync(DOCS, 'utf8');
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  if (start === -1 || end < start) return;
  const block = [
    START,
    `Profile **${report.profile}**, seed ${report.seed}, finished ${report.finishedAt}. Reproduce with \`${report.command}\`.`,
    '',
    markdownTable(report.suites),
    END,
  ].join('\n');
  writeFileSync(DOCS, text.slice(0, start) + block + text.slice(end + END.length));
}
