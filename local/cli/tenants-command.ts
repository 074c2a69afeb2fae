import { Command, InvalidArgumentError, Option } from 'commander';
import { ENGINE_NAMES } from '../../functions/core/engine.js';
import type { CloneRecord } from '../../functions/core/tenants.js';
import { PLACEMENTS } from '../../functions/core/tenants.js';
import { type ControlPlaneClient, connectControlPlane } from '../client.js';
import type { ExecutionRecord } from '../workflow-runner.js';
import { EXIT, printJson, table } from './output.js';

export async function withClient<T>(fn: (client: ControlPlaneClient) => Promise<T>): Promise<T> {
  const client = await connectControlPlane();
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 100_000)
    throw new InvalidArgumentError('must be a whole number from 0 to 100000');
  return n;
}

/** `clonectl tenants create | list | show | delete | move` */
export function tenantsCommand(): Command {
  const cmd = new Command('tenants').description('tenant clones: create, inspect, move and delete them');

  cmd
    .command('create')
    .description('register a tenant and start its clone workflow')
    .argument('<tenant-id>', 'lowercase letters, digits and dashes, 3 to 31, starting with a letter')
    .addOption(new Option('--engine <engine>', 'database engine').choices(ENGINE_NAMES).makeOptionMandatory())
    .requiredOption('--industry <industry>', 'healthcare | finance | technology')
    .requiredOption('--version <version>', 'template version, e.g. v1.1')
    .addOption(
      new Option('--placement <placement>', 'where the database lives').choices(PLACEMENTS).default('shared'),
    )
    .option('--sample-size <n>', 'rows of per-tenant sample data', count, 20)
    .option(
      '--wait',
      'wait until the clone is READY or FAILED (always the case without a running control plane)',
    )
    .option('--json', 'print JSON')
    .action(
      async (
        tenantId: string,
        opts: {
          engine: string;
          industry: string;
          version: string;
          placement: string;
          sampleSize: number;
          wait?: boolean;
          json?: boolean;
        },
      ) =>
        withClient(async (client) => {
          const result = await client.createTenant({
            tenantId,
            engine: opts.engine,
            industry: opts.industry,
            version: opts.version,
            placement: opts.placement,
            sampleSize: opts.sampleSize,
          });
          const wait = opts.wait || client.mode === 'in-process';
          const execution = wait ? await client.waitForExecution(result.executionName) : undefined;
          const record = wait ? await client.getTenant(tenantId) : result.record;
          if (opts.json)
            printJson({
              tenant: record,
              created: result.created,
              execution: execution && summary(execution),
            });
          else {
            console.log(`${record.tenantId} ${record.state}${result.created ? '' : ' (already requested)'}`);
            console.log(
              `  clone ${record.cloneId}  ${record.engine} ${record.version} ${record.industry} ${record.placement}`,
            );
            console.log(
              `  execution ${result.executionName}${execution ? ` ${execution.status}` : ' started'}`,
            );
            if (record.lastError) console.log(`  last error: ${record.lastError}`);
          }
          if (wait && record.state !== 'READY') process.exitCode = EXIT.failed;
        }),
    );

  cmd
    .command('list')
    .description('list tenants and the state of their clones')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) =>
      withClient(async (client) => {
        const tenants = await client.listTenants();
        if (opts.json) return printJson(tenants);
        console.log(
          table(
            ['TENANT', 'STATE', 'ENGINE', 'VERSION', 'INDUSTRY', 'PLACEMENT', 'CLONE', 'UPDATED'],
            tenants.map(row),
          ),
        );
      }),
    );

  cmd
    .command('show')
    .description('show a tenant: its clone, coordinates and last error (never a password)')
    .argument('<tenant-id>')
    .option('--json', 'print JSON')
    .action(async (tenantId: string, opts: { json?: boolean }) =>
      withClient(async (client) => {
        const t = await client.getTenant(tenantId);
        if (opts.json) return printJson(t);
        for (const [k, v] of Object.entries(t)) console.log(`${k.padEnd(14)} ${v}`);
      }),
    );

  cmd
    .command('delete')
    .description('run the deprovision workflow: drop the database and roles, delete the secret, mark DELETED')
    .argument('<tenant-id>')
    .option('--wait', 'wait until the deletion ends')
    .option('--json', 'print JSON')
    .action(async (tenantId: string, opts: { wait?: boolean; json?: boolean }) =>
      withClient(async (client) => {
        const result = await client.deleteTenant(tenantId);
        const wait = opts.wait || client.mode === 'in-process';
        const execution = wait ? await client.waitForExecution(result.executionName) : undefined;
        const record = await client.getTenant(tenantId);
        if (opts.json) return printJson({ tenant: record, execution: execution && summary(execution) });
        console.log(
          `${record.tenantId} ${record.state}  execution ${result.executionName}${execution ? ` ${execution.status}` : ' started'}`,
        );
        if (wait && record.state !== 'DELETED') process.exitCode = EXIT.failed;
      }),
    );

  cmd
    .command('move')
    .description(
      'copy a READY PostgreSQL tenant to its other placement, verify fingerprint and row counts, switch its endpoint, remove the old copy (users keep their mappings)',
    )
    .argument('<tenant-id>')
    .addOption(
      new Option('--placement <placement>', 'where the tenant goes')
        .choices(PLACEMENTS)
        .makeOptionMandatory(),
    )
    .option('--json', 'print JSON')
    .action(async (tenantId: string, opts: { placement: string; json?: boolean }) =>
      withClient(async (client) => {
        const result = await client.moveTenant(tenantId, opts.placement);
        if (opts.json) return printJson(result);
        const rows = Object.values(result.rows).reduce((a, b) => a + b, 0);
        console.log(
          `${result.tenantId} moved ${result.from} -> ${result.to}: ${rows} rows in ${Object.keys(result.rows).length} tables, fingerprint ${result.fingerprint.slice(0, 12)}, now at ${result.endpoint}`,
        );
        if (!result.oldRemoved)
          console.error(
            `warning: the old copy at ${result.from} could not be removed; the tenant is served from ${result.to}`,
          );
      }),
    );

  cmd
    .command('upgrade')
    .description(
      'upgrade one READY tenant to a template version: run its migration path, verify the fingerprint equals a fresh copy of that version, record it (PostgreSQL and SQLite all or nothing; MySQL resumable statement by statement)',
    )
    .argument('<tenant-id>')
    .requiredOption('--to <version>', 'e.g. v1.1')
    .option('--json', 'print JSON')
    .action(async (tenantId: string, opts: { to: string; json?: boolean }) =>
      withClient(async (client) => {
        const result = await client.upgradeTenant(tenantId, opts.to);
        if (opts.json) return printJson(result);
        console.log(
          result.action === 'already'
            ? `${result.tenantId} is at ${result.to} already (fingerprint ${result.fingerprint.slice(0, 12)})`
            : `${result.tenantId} upgraded ${result.from} -> ${result.to}: ${result.statements} statements of ${result.applied.join(', ')}, fingerprint ${result.fingerprint.slice(0, 12)} (fresh ${result.to}) in ${Math.round(result.durationMs)} ms`,
        );
      }),
    );

  cmd
    .command('branch')
    .description(
      "make a sandbox tenant from a live one: a full copy of its database (data included, the engine's own copy) with its own credentials and registry entry",
    )
    .argument('<source-id>', 'a READY shared tenant')
    .argument('<new-id>', 'the new tenant id')
    .option(
      '--wait',
      'wait until the branch is READY or FAILED (always the case without a running control plane)',
    )
    .option('--json', 'print JSON')
    .action(async (sourceId: string, tenantId: string, opts: { wait?: boolean; json?: boolean }) =>
      withClient(async (client) => {
        const result = await client.branchTenant(sourceId, tenantId);
        const wait = opts.wait || client.mode === 'in-process';
        const execution = wait ? await client.waitForExecution(result.executionName) : undefined;
        const record = await client.getTenant(tenantId);
        if (opts.json) return printJson({ tenant: record, execution: execution && summary(execution) });
        console.log(
          `${record.tenantId} ${record.state}  branched from ${sourceId}  execution ${result.executionName}${execution ? ` ${execution.status}` : ' started'}`,
        );
        if (wait && record.state !== 'READY') process.exitCode = EXIT.failed;
      }),
    );

  return cmd;
}

/** `clonectl drift`: READY tenants whose live schema differs from their recorded version's. */
export function driftCommand(): Command {
  return new Command('drift')
    .description(
      "compare each READY tenant's live schema fingerprint with a fresh copy of its recorded version and list what differs; exit code 1 when a tenant drifted",
    )
    .option('--all', 'list every tenant, not only the drifted ones')
    .option('--json', 'print JSON')
    .action(async (opts: { all?: boolean; json?: boolean }) =>
      withClient(async (client) => {
        const report = await client.drift();
        const drifted = report.filter((d) => d.drifted || d.error);
        if (opts.json) printJson(opts.all ? report : drifted);
        else {
          for (const d of opts.all ? report : drifted) {
            const state = d.error ? `could not be read: ${d.error}` : d.drifted ? 'DRIFTED' : 'ok';
            console.log(`${d.tenantId}  ${d.engine} ${d.version} ${d.industry}  ${state}`);
            for (const line of d.differences) console.log(`  ${line}`);
          }
          console.log(`${report.length} tenants checked, ${drifted.length} drifted or unreadable`);
        }
        if (drifted.length) process.exitCode = EXIT.failed;
      }),
    );
}

/** `clonectl executions show` */
export function executionsCommand(): Command {
  const cmd = new Command('executions').description('workflow executions and their history');
  cmd
    .command('show')
    .description(
      "an execution's status and its history: every state entered and left, with inputs and outputs",
    )
    .argument('<name-or-tenant-id>', 'an execution name, or a tenant id for its latest execution')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { json?: boolean }) =>
      withClient(async (client) => {
        let execution = await client.execution(name).catch(() => null);
        if (!execution) {
          const tenant = await client.getTenant(name);
          execution = tenant.executionName ? await client.execution(tenant.executionName) : null;
        }
        if (!execution) throw new InvalidArgumentError(`no execution for ${name}`);
        if (opts.json) return printJson(execution);
        console.log(
          `${execution.name}  ${execution.stateMachine}  ${execution.status}  started ${execution.startedAt}${execution.stoppedAt ? `  stopped ${execution.stoppedAt}` : ''}`,
        );
        if (execution.error) console.log(`error: ${execution.error}: ${execution.cause}`);
        console.log(
          table(
            ['TIME', 'EVENT', 'STATE', 'DETAIL'],
            execution.events.map((e) => [
              e.timestamp,
              e.type,
              e.state ?? '',
              e.error ? `${e.error}: ${e.cause}` : e.attempt ? `attempt ${e.attempt}` : '',
            ]),
          ),
        );
      }),
    );
  return cmd;
}

function summary(e: ExecutionRecord) {
  return {
    name: e.name,
    status: e.status,
    startedAt: e.startedAt,
    stoppedAt: e.stoppedAt,
    error: e.error,
    cause: e.cause,
  };
}

function row(t: CloneRecord): string[] {
  return [t.tenantId, t.state, t.engine, t.version, t.industry, t.placement, t.cloneId, t.updatedAt];
}
