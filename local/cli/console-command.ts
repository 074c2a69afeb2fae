import { Command } from 'commander';
import { ValidationError } from '../../functions/core/errors.js';
import { readOwner } from '../client.js';
import { DevIssuer } from '../dev-issuer.js';
import { LocalEnvironment } from '../environment.js';

/** `clonectl console`: the link to the running control plane's web console. */
export function consoleCommand(): Command {
  return new Command('console')
    .description(
      "print a link to the web console of the running control plane (npm start): tenants, their health, and each execution's states as a timeline. The link carries an operator token (8 hours) in its fragment: keep it to yourself",
    )
    .action(async () => {
      const env = new LocalEnvironment();
      try {
        const owner = await readOwner(env.home);
        if (!owner)
          throw new ValidationError(`no control plane runs on ${env.home}: start it with npm start first`);
        const issuer = await DevIssuer.load(env.home);
        const token = await issuer.mint({
          email: 'console@clonefactory.local',
          operator: true,
          ttlSeconds: 8 * 3600,
        });
        console.log(`${owner.url}/console#token=${token}`);
      } finally {
        await env.close();
      }
    });
}
