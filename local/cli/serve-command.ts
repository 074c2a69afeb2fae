import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_POOL_OPTIONS } from '../../functions/core/api/tenant-pools.js';
import { errorMessage } from '../../functions/core/errors.js';
import { DEFAULT_HEALTH_CONCURRENCY, HEALTH_INTERVAL_SECONDS } from '../../functions/core/health.js';
import { assertNamespace } from '../../functions/core/identifiers.js';
import { RootImageManager } from '../../functions/core/images.js';
import { TemplateCatalog } from '../../functions/core/templates.js';
import { removeOwnerFile, writeOwnerFile } from '../client.js';
import { LocalControlPlane } from '../control-plane.js';
import { LocalEnvironment } from '../environment.js';
import { LocalServer } from '../server.js';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('must be a port number from 0 (any free port) to 65535');
  return n;
}

/**
 * The API pools' share of the process's tenant-connection cap: all of it, less the health
 * monitor's concurrency when the monitor runs (found by the load suite: with the monitor on,
 * the servers saw 48 tenant connections against a cap of 40).
 */
export function apiPoolCap(total: number, healthIntervalSeconds: number): number {
  return healthIntervalSeconds > 0 ? total - DEFAULT_HEALTH_CONCURRENCY : total;
}

/** `clonectl serve`: what `npm start` runs. */
export function serveCommand(): Command {
  return new Command('serve')
    .description('start the local control plane: engines on embedded defaults, root images, and the HTTP API')
    .option('-p, --port <port>', 'HTTP port', port, Number(process.env.PORT) || 3000)
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--no-build', 'do not build missing root images at start')
    .action(async (opts: { port: number; host: string; build: boolean }) => {
      const log = (m: string) => console.log(`[clonefactory] ${m}`);
      const catalog = await TemplateCatalog.load();
      const env = new LocalEnvironment({ log });
      const namespace = assertNamespace(env.env.CLONEFACTORY_NAMESPACE ?? 'cf');
      log(`state directory ${env.home}, namespace ${namespace}`);
      for (const name of catalog.engines) {
        const r = await env.tryEngine(name);
        if ('reason' in r) {
          log(`${name}: unavailable (${r.reason})`);
          continue;
        }
        log(`${name}: ${r.engine.location}`);
        if (!opts.build) continue;
        const images = new RootImageManager(r.engine, catalog, { namespace });
        for (const t of catalog.list({ engine: name })) {
          try {
            const img = await images.ensure(t.version, t.industry);
            log(`  image ${img.name} ${img.action} in ${img.durationMs.toFixed(0)} ms`);
          } catch (error) {
            log(`  image ${t.version}/${t.industry} failed: ${errorMessage(error)}`);
          }
        }
      }
      // The health monitor's sessions (one per clone it checks, up to its concurrency) count
      // against the same cap as the API's pools: the process never holds more than the cap.
      const interval = Number(process.env.HEALTH_INTERVAL_SECONDS ?? HEALTH_INTERVAL_SECONDS);
      const pools = { globalMax: apiPoolCap(DEFAULT_POOL_OPTIONS.globalMax, interval) };
      const plane = await LocalControlPlane.start({ env, log, namespace, pools });
      await plane.startDedicatedServers(log);
      const server = await LocalServer.start({ plane, port: opts.port, host: opts.host });
      await writeOwnerFile(env.home, {
        pid: process.pid,
        url: server.url,
        startedAt: new Date().toISOString(),
      });
      log(
        `listening on ${server.url}  (OpenAPI at ${server.url}/openapi.json; every route needs a bearer token)`,
      );
      log(`dev JWT issuer: JWKS at ${server.url}/.well-known/jwks.json`);
      log('next:');
      log('  npx clonectl tenants create acme --engine sqlite --industry technology --version v1.1 --wait');
      log('  npx clonectl users map --email admin@acme.com --tenant acme --role admin');
      log('  TOKEN=$(npx clonectl token --email admin@acme.com --tenant acme)');
      log(`  curl -H "Authorization: Bearer $TOKEN" ${server.url}/data/products`);
      log('  npx clonectl demo');
      // The health monitor, as EventBridge runs it on AWS: one pass per interval, never two at once.
      let passing = false;
      const pass = async () => {
        if (passing) return;
        passing = true;
        try {
          const { report } = await plane.checkHealth();
          const { HEALTHY, DEGRADED, UNREACHABLE } = report.counts;
          if (DEGRADED || UNREACHABLE)
            log(
              `health: ${HEALTHY} healthy, ${DEGRADED} degraded, ${UNREACHABLE} unreachable (clonectl tenants list)`,
            );
        } catch (error) {
          log(`health pass failed: ${errorMessage(error)}`);
        } finally {
          passing = false;
        }
      };
      const timer = interval > 0 ? setInterval(() => void pass(), interval * 1000) : undefined;
      timer?.unref();
      if (timer) log(`health monitor: every ${interval} s (HEALTH_INTERVAL_SECONDS; 0 turns it off)`);
      // The reconciler: a report every interval; it removes and repairs only with RECONCILE_APPLY=1
      // (a developer's other state directories may share this server and namespace).
      const reconcileEvery = Number(process.env.RECONCILE_INTERVAL_SECONDS ?? 600);
      const apply = process.env.RECONCILE_APPLY === '1';
      const reconciler =
        reconcileEvery > 0
          ? setInterval(() => {
              plane
                .reconcile({ apply })
                .then((r) => {
                  const { orphans, removed, dangling, stuck } = r.counts;
                  if (orphans || dangling || stuck)
                    log(
                      `reconcile: ${orphans} orphans (${removed} removed), ${dangling} dangling, ${stuck} stuck (clonectl reconcile)`,
                    );
                })
                .catch((error) => log(`reconcile failed: ${errorMessage(error)}`));
            }, reconcileEvery * 1000)
          : undefined;
      reconciler?.unref();
      if (reconciler)
        log(
          `reconciler: every ${reconcileEvery} s, ${apply ? 'applying' : 'reporting only (RECONCILE_APPLY=1 to act)'}`,
        );
      // From the registry alone: \`clonectl status\` also reads every execution history.
      const byState = new Map<string, number>();
      for (const t of await plane.tenants.list())
        if (t.state !== 'DELETED') byState.set(t.state, (byState.get(t.state) ?? 0) + 1);
      log(
        `ready: ${[...byState.values()].reduce((a, b) => a + b, 0)} tenants (${
          [...byState].map(([k, v]) => `${v} ${k}`).join(', ') || 'none yet'
        }); \`clonectl status\` for the overview`,
      );
      const stop = async (signal: string) => {
        log(`${signal}: shutting down`);
        if (timer) clearInterval(timer);
        if (reconciler) clearInterval(reconciler);
        await server.close();
        await removeOwnerFile(env.home);
        await plane.close();
        await env.close();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop('SIGINT'));
      process.once('SIGTERM', () => void stop('SIGTERM'));
    });
}
