import { Command, InvalidArgumentError, Option } from 'commander';
import { ENGINE_NAMES } from '../../functions/core/engine.js';
import type { UpgradeRun } from '../../functions/core/fleet-upgrade.js';
import { PLACEMENTS } from '../../functions/core/tenants.js';
import type { ControlPlaneClient } from '../client.js';
import { EXIT, printJson, table } from './output.js';
import { withClient } from './tenants-command.js';

const FINISHED = new Set(['STOPPED', 'HALTED', 'SUCCEEDED', 'FAILED']);
const POLL_MS = 250;

function whole(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
    return n;
  };
}

function percent(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 100)
    throw new InvalidArgumentError('must be a number above 0, at most 100');
  return n;
}

interface UpgradeOptions {
  to: string;
  engine?: string;
  from?: string;
  industry?: string;
  placement?: string;
  tenants?: string;
  canary?: number;
  maxConcurrency?: number;
  maxFailures?: number;
  maxFailurePercent?: number;
  continueOnError?: boolean;
  dryRun?: boolean;
  detach?: boolean;
  json?: boolean;
}

/** `clonectl upgrade --to v1.1 [selection] [options]`: a fleet upgrade run, with live progress. */
export function upgradeCommand(): Command {
  return new Command('upgrade')
    .description(
      'upgrade the selected READY tenants to a template version through the upgrade workflow: a canary wave, then the rest, under a failure policy; shows progress and a summary',
    )
    .requiredOption('--to <version>', 'the version to upgrade to, e.g. v1.1')
    .addOption(new Option('--engine <engine>', 'only tenants of this engine').choices(ENGINE_NAMES))
    .option('--from <version>', 'only tenants at this version')
    .option('--industry <industry>', 'only tenants of this industry')
    .addOption(new Option('--placement <placement>', 'only tenants of this placement').choices(PLACEMENTS))
    .option('--tenants <ids>', 'only these tenants (comma-separated); each must exist and be READY')
    .option('--canary <n>', 'tenants in the canary wave (the rest wait for it to pass)', whole(0, 1000), 1)
    .option('--max-concurrency <n>', 'tenants upgraded at the same time', whole(1, 100), 4)
    .option('--max-failures <n>', 'halt once this many tenants failed (default 1)', whole(1, 1_000_000))
    .option('--max-failure-percent <x>', 'halt once this share of the selected tenants failed', percent)
    .option('--continue-on-error', 'never halt: upgrade every tenant that can be, report the others')
    .option(
      '--dry-run',
      'rehearse on throw-away branches of each tenant (data included) and report who would fail; changes no tenant',
    )
    .option('--detach', 'start the run and print its id without waiting')
    .option('--json', 'print the run as JSON at the end (no progress bar)')
    .action(async (opts: UpgradeOptions) =>
      withClient(async (client) => {
        const run = await client.startUpgrade({
          to: opts.to,
          dryRun: Boolean(opts.dryRun),
          selection: {
            ...(opts.engine ? { engine: opts.engine } : {}),
            // An empty filter is refused by validation, never read as "no filter".
            ...(opts.from !== undefined ? { version: opts.from } : {}),
            ...(opts.industry !== undefined ? { industry: opts.industry } : {}),
            ...(opts.placement ? { placement: opts.placement } : {}),
            ...(opts.tenants !== undefined ? { tenants: opts.tenants.split(',').map((t) => t.trim()) } : {}),
          },
          policy: {
            canary: opts.canary,
            maxConcurrency: opts.maxConcurrency,
            ...(opts.maxFailures !== undefined ? { maxFailures: opts.maxFailures } : {}),
            ...(opts.maxFailurePercent !== undefined ? { maxFailurePercent: opts.maxFailurePercent } : {}),
            ...(opts.continueOnError ? { continueOnError: true } : {}),
          },
        });
        await follow(client, run, opts);
      }),
    );
}

/** `clonectl upgrades list | show | stop | resume` */
export function upgradesCommand(): Command {
  const cmd = new Command('upgrades').description('fleet upgrade runs: list, inspect, stop and resume them');
  cmd
    .command('list')
    .description('every run, newest first')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) =>
      withClient(async (client) => {
        const runs = await client.upgradeRuns();
        if (opts.json) return printJson(runs);
        console.log(
          table(
            ['RUN', 'STATE', 'TO', 'DRY', 'TENANTS', 'UPGRADED', 'FAILED', 'SKIPPED', 'CREATED'],
            runs.map((r) => [
              r.runId,
              r.state,
              r.to,
              r.dryRun ? 'yes' : '',
              String(r.tenants.length),
              String(r.upgraded + r.already),
              String(r.failed),
              String(r.skipped),
              r.createdAt,
            ]),
          ),
        );
      }),
    );
  cmd
    .command('show')
    .description("a run's counts, its failures and every tenant's status")
    .argument('<run-id>')
    .option('--json', 'print JSON')
    .action(async (runId: string, opts: { json?: boolean }) =>
      withClient(async (client) => {
        const run = await client.upgradeRun(runId);
        if (opts.json) return printJson(run);
        await printSummary(client, run);
      }),
    );
  cmd
    .command('stop')
    .description(
      'stop a running run: tenants in flight finish, the others are skipped (resume goes on later)',
    )
    .argument('<run-id>')
    .action(async (runId: string) =>
      withClient(async (client) => {
        const run = await client.stopUpgrade(runId);
        console.log(`${run.runId} ${run.state}`);
      }),
    );
  cmd
    .command('resume')
    .description(
      'resume a stopped, halted or failed run: upgraded tenants are skipped, failed ones tried again',
    )
    .argument('<run-id>')
    .option('--detach', 'do not wait for it')
    .option('--json', 'print the run as JSON at the end')
    .action(async (runId: string, opts: { detach?: boolean; json?: boolean }) =>
      withClient(async (client) => follow(client, await client.resumeUpgrade(runId), opts)),
    );
  return cmd;
}

/** Waits for the run, drawing progress, then prints its summary; exit code 1 unless it SUCCEEDED. */
async function follow(
  client: ControlPlaneClient,
  started: UpgradeRun,
  opts: { detach?: boolean; json?: boolean },
): Promise<void> {
  if (opts.detach) {
    if (opts.json) printJson(started);
    else
      console.log(
        `${started.runId} started: ${started.tenants.length} tenants to ${started.to}${started.dryRun ? ' (dry run)' : ''}; \`clonectl upgrades show ${started.runId}\``,
      );
    return;
  }
  const progress = opts.json ? null : new Progress(started);
  const since = new Date(Date.now() - 1000).toISOString();
  let run = started;
  // Finished means closed by `Finish upgrade` (HALTED comes earlier, while skipped tenants are still marked).
  while (!(FINISHED.has(run.state) && run.finishedAt && run.finishedAt >= since)) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    run = await client.upgradeRun(started.runId);
    progress?.draw(run);
  }
  progress?.end(run);
  if (opts.json) printJson(run);
  else await printSummary(client, run);
  if (run.state !== 'SUCCEEDED') process.exitCode = EXIT.failed;
}

/**
 * One line of progress: done out of total, rate, ETA and failures. Redrawn in place on a
 * terminal; elsewhere (CI logs) a line every 10% at most.
 */
class Progress {
  private readonly started = Date.now();
  private readonly tty = Boolean(process.stderr.isTTY);
  private lastDecile = -1;

  constructor(run: UpgradeRun) {
    process.stderr.write(
      `${run.runId}: ${run.tenants.length} tenants to ${run.to}${run.dryRun ? ' (dry run on branches)' : ''}, canary ${Math.min(run.policy.canary, run.tenants.length)}, concurrency ${run.policy.maxConcurrency}\n`,
    );
  }

  draw(run: UpgradeRun): void {
    const total = run.tenants.length;
    const done = run.upgraded + run.already + run.failed + run.skipped;
    const seconds = (Date.now() - this.started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const eta = rate > 0 ? Math.ceil((total - done) / rate) : undefined;
    const width = 30;
    const filled = total ? Math.round((done / total) * width) : width;
    const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}  ${rate.toFixed(1)}/s  ETA ${eta === undefined ? '?' : `${eta}s`}  failed ${run.failed}  ${run.state}`;
    if (this.tty) process.stderr.write(`\r${line}\u001b[K`);
    else {
      const decile = total ? Math.floor((done / total) * 10) : 10;
      if (decile > this.lastDecile) {
        this.lastDecile = decile;
        process.stderr.write(`${line}\n`);
      }
    }
  }

  end(run: UpgradeRun): void {
    this.draw(run);
    if (this.tty) process.stderr.write('\n');
    process.stderr.write(`finished in ${((Date.now() - this.started) / 1000).toFixed(1)} s\n`);
  }
}

async function printSummary(client: ControlPlaneClient, run: UpgradeRun): Promise<void> {
  console.log(
    `${run.runId}  ${run.state}  to ${run.to}${run.dryRun ? '  (dry run)' : ''}${run.reason ? `  ${run.reason}` : ''}`,
  );
  console.log(
    `tenants ${run.tenants.length}: ${run.dryRun ? 'would upgrade' : 'upgraded'} ${run.upgraded}, already there ${run.already}, failed ${run.failed}, skipped ${run.skipped}`,
  );
  const failures = new Map(run.failures.map((f) => [f.tenantId, f.error]));
  if (run.dryRun) {
    if (failures.size)
      console.log(
        table(
          ['TENANT', 'WOULD FAIL BECAUSE'],
          [...failures].map(([id, error]) => [id, error]),
        ),
      );
    return;
  }
  const mine = new Set(run.tenants);
  const tenants = (await client.listTenants()).filter((t) => mine.has(t.tenantId));
  console.log(
    table(
      ['TENANT', 'ENGINE', 'VERSION', 'STATUS', 'DETAIL'],
      tenants.map((t) => {
        const status = t.upgrade?.runId === run.runId ? t.upgrade : undefined;
        return [
          t.tenantId,
          t.engine,
          t.version,
          status?.status ?? 'queued',
          (status?.detail ?? failures.get(t.tenantId) ?? '').replace(/\s+/g, ' ').slice(0, 160),
        ];
      }),
    ),
  );
}
