import { Command } from 'commander';
import { printJson, table } from './output.js';
import { withClient } from './tenants-command.js';

const counts = (m: Record<string, number>) =>
  Object.entries(m)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k} ${v}`)
    .join(', ') || 'none';

/** `clonectl status`: the operator's overview of this control plane. */
export function statusCommand(): Command {
  return new Command('status')
    .description(
      "an overview: tenants by state, health, version, engine and placement, the ones that need attention, recent executions with their duration, and the reconciler's last result",
    )
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) =>
      withClient(async (client) => {
        const s = await client.status();
        if (opts.json) return printJson(s);
        console.log(`tenants: ${s.tenants}`);
        console.log(`  by state:     ${counts(s.byState)}`);
        console.log(`  by health:    ${counts(s.byHealth)}`);
        console.log(`  by version:   ${counts(s.byVersion)}`);
        console.log(`  by engine:    ${counts(s.byEngine)}`);
        console.log(`  by placement: ${counts(s.byPlacement)}`);
        if (s.attention.length) {
          console.log('\nneeds attention:');
          console.log(
            table(
              ['TENANT', 'STATE', 'HEALTH', 'WHY'],
              s.attention.map((a) => [
                a.tenantId,
                a.state,
                a.health ?? '',
                a.detail.replace(/\s+/g, ' ').slice(0, 120),
              ]),
            ),
          );
        }
        console.log('\nrecent executions:');
        console.log(
          table(
            ['EXECUTION', 'WORKFLOW', 'STATUS', 'STARTED', 'DURATION'],
            s.executions.map((e) => [
              e.name,
              e.stateMachine,
              e.status,
              e.startedAt,
              e.durationMs === undefined ? 'running' : `${(e.durationMs / 1000).toFixed(2)} s`,
            ]),
          ),
        );
        const r = s.lastReconcile;
        console.log(
          `\nlast reconcile: ${
            r
              ? `${r.at} (${r.applied ? 'applied' : 'dry run'}): ${r.counts.orphans} orphans, ${r.counts.removed} removed, ${r.counts.dangling} dangling, ${r.counts.stuck} stuck`
              : 'never (clonectl reconcile)'
          }`,
        );
      }),
    );
}
