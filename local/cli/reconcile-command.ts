import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_GRACE_MS } from '../../functions/core/reconciler.js';
import { EXIT, printJson, table } from './output.js';
import { withClient } from './tenants-command.js';

function minutes(value: string): number {
  const n = Number(value);
  // Finite in milliseconds too: 1e308 minutes would reach the reconciler as Infinity.
  if (!Number.isFinite(n * 60_000) || n < 0)
    throw new InvalidArgumentError('must be a number of minutes, 0 or more');
  return n;
}

/** `clonectl reconcile [--apply]`: the registry against the engines and the secret store. */
export function reconcileCommand(): Command {
  return new Command('reconcile')
    .description(
      'find orphaned databases, roles and secrets (marked with a clone id that has no live registry entry), READY entries whose database is gone, and entries stuck in flight; a dry run unless --apply. Only marked artefacts older than the grace period are ever removed',
    )
    .option('--apply', 'remove the orphans and fail or restart the stuck entries')
    .option(
      '--grace <minutes>',
      'leave artefacts and entries younger than this (longer than any execution)',
      minutes,
      DEFAULT_GRACE_MS / 60_000,
    )
    .option('--json', 'print JSON')
    .action(async (opts: { apply?: boolean; grace: number; json?: boolean }) =>
      withClient(async (client) => {
        const report = await client.reconcile({ apply: Boolean(opts.apply), graceMs: opts.grace * 60_000 });
        if (opts.json) printJson(report);
        else {
          console.log(
            `${report.applied ? 'applied' : 'dry run (nothing changed; --apply to act)'}: ${report.counts.orphans} orphans (${report.counts.removed} removed), ${report.counts.dangling} dangling, ${report.counts.stuck} stuck, ${report.counts.unmarked} unmarked left alone`,
          );
          if (report.orphans.length)
            console.log(
              table(
                ['ORPHAN', 'NAME', 'CLONE', 'AGE', 'ACTION'],
                report.orphans.map((o) => [
                  o.kind,
                  o.name,
                  o.cloneId ?? '',
                  o.ageMs === undefined ? '?' : `${Math.round(o.ageMs / 60_000)} min`,
                  `${o.action}${o.error ? ` (${o.error})` : ''}`,
                ]),
              ),
            );
          for (const d of report.dangling)
            console.log(`dangling: ${d.tenantId} (${d.database ?? 'no database'}): ${d.reason}`);
          for (const s of report.stuck)
            console.log(`stuck: ${s.tenantId} ${s.state} since ${s.updatedAt}: ${s.action}`);
        }
        const left =
          report.orphans.some((o) => o.action === 'would remove') ||
          report.dangling.length ||
          report.stuck.length;
        if (left) process.exitCode = EXIT.failed;
      }),
    );
}
