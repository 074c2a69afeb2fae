import { Command, InvalidArgumentError, Option } from 'commander';
import { APP_ROLES } from '../../functions/core/tenants.js';
import type { UserMapping } from '../../functions/core/users.js';
import { DevIssuer } from '../dev-issuer.js';
import { LocalEnvironment } from '../environment.js';
import { printJson, table } from './output.js';
import { withClient } from './tenants-command.js';

const row = (m: UserMapping) => [
  m.email,
  m.userId,
  m.tenantId,
  m.appRole,
  m.permissions.join(','),
  m.lastAccessed ?? '-',
];

/** `clonectl users map | unmap | list` */
export function usersCommand(): Command {
  const cmd = new Command('users').description(
    'user-to-tenant mappings: who reaches which clone, as which role',
  );
  cmd
    .command('map')
    .description('map a user to a READY tenant (a user belongs to exactly one tenant)')
    .requiredOption('--email <email>', "the user's email (lookups ignore case)")
    .requiredOption('--tenant <tenant-id>', 'the tenant')
    .addOption(new Option('--role <role>', 'app role').choices(APP_ROLES).makeOptionMandatory())
    .option('--user-id <id>', "the identity provider's subject (default: the lowercased email)")
    .option('--remap', 'move a user who is mapped to another tenant')
    .option('--json', 'print JSON')
    .action(
      async (opts: {
        email: string;
        tenant: string;
        role: string;
        userId?: string;
        remap?: boolean;
        json?: boolean;
      }) =>
        withClient(async (client) => {
          const r = await client.mapUser({
            email: opts.email,
            tenantId: opts.tenant,
            appRole: opts.role,
            ...(opts.userId ? { userId: opts.userId } : {}),
            remap: Boolean(opts.remap),
          });
          if (opts.json) printJson(r);
          else
            console.log(
              `${r.mapping.email} ${r.created ? 'mapped' : 'updated'}: tenant ${r.mapping.tenantId} as ${r.mapping.appRole} (user id ${r.mapping.userId})`,
            );
        }),
    );
  cmd
    .command('unmap')
    .description('remove a user mapping')
    .argument('<user>', 'user id or email')
    .option('--json', 'print JSON')
    .action(async (user: string, opts: { json?: boolean }) =>
      withClient(async (client) => {
        const m = await client.unmapUser(user);
        if (opts.json) printJson({ unmapped: m });
        else console.log(`${m.email} unmapped from tenant ${m.tenantId}`);
      }),
    );
  cmd
    .command('list')
    .description('list user mappings')
    .option('--tenant <tenant-id>', 'only this tenant')
    .option('--json', 'print JSON')
    .action(async (opts: { tenant?: string; json?: boolean }) =>
      withClient(async (client) => {
        const users = await client.listUsers(opts.tenant);
        if (opts.json) printJson({ users });
        else if (users.length === 0) console.log('no users mapped');
        else
          console.log(
            table(['EMAIL', 'USER ID', 'TENANT', 'ROLE', 'PERMISSIONS', 'LAST ACCESSED'], users.map(row)),
          );
      }),
    );
  return cmd;
}

function ttl(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 86_400)
    throw new InvalidArgumentError('must be 1 to 86400 seconds');
  return n;
}

/** `clonectl token`: a dev token from the local issuer. Local mode only: AWS tokens come from the IdP. */
export function tokenCommand(): Command {
  return new Command('token')
    .description("mint a development JWT from the local control plane's dev issuer (local mode only)")
    .requiredOption('--email <email>', 'email claim (and subject, lowercased)')
    .option('--tenant <tenant-id>', 'tenant claim (needed unless --operator)')
    .option('--operator', 'an operator token (scope clonefactory/operator): the control-plane routes')
    .option('--ttl <seconds>', 'lifetime in seconds', ttl, 3600)
    .action(async (opts: { email: string; tenant?: string; operator?: boolean; ttl: number }) => {
      const env = new LocalEnvironment();
      const issuer = await DevIssuer.load(env.home);
      console.log(
        await issuer.mint({
          email: opts.email,
          tenant: opts.tenant,
          operator: opts.operator,
          ttlSeconds: opts.ttl,
        }),
      );
    });
}
