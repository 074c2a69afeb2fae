import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { HealthReport } from '../core/health.js';

/** The CloudWatch namespace of the health monitor's metrics; the CDK alarms read the same names. */
export const HEALTH_METRICS_NAMESPACE = 'CloneFactory';

/** Metric names, shared with the alarms and the dashboard in lib/monitoring. */
export const HEALTH_METRICS = {
  healthy: 'HealthyClones',
  degraded: 'DegradedClones',
  unreachable: 'UnreachableClones',
  drifted: 'DriftedClones',
  isolationFailures: 'IsolationFailures',
  isolationProbes: 'IsolationProbes',
  latencyP95: 'QueryLatencyP95',
  passDuration: 'HealthPassDuration',
} as const;

/**
 * Adds one pass's fleet-level figures to `metrics` (per-clone figures are in the registry:
 * a metric per tenant would be a custom metric per tenant). The caller publishes them: to
 * standard output as EMF in Lambda, to a file locally.
 */
export function recordHealthMetrics(metrics: Metrics, report: HealthReport): void {
  const { counts } = report;
  metrics.addMetric(HEALTH_METRICS.healthy, MetricUnit.Count, counts.HEALTHY);
  metrics.addMetric(HEALTH_METRICS.degraded, MetricUnit.Count, counts.DEGRADED);
  metrics.addMetric(HEALTH_METRICS.unreachable, MetricUnit.Count, counts.UNREACHABLE);
  metrics.addMetric(HEALTH_METRICS.drifted, MetricUnit.Count, counts.drifted);
  metrics.addMetric(HEALTH_METRICS.isolationFailures, MetricUnit.Count, counts.isolationFailures);
  metrics.addMetric(HEALTH_METRICS.isolationProbes, MetricUnit.Count, counts.probed);
  const latencies = report.clones
    .map((c) => c.latencyMs)
    .filter((l): l is number => l !== undefined)
    .sort((a, b) => a - b);
  if (latencies.length)
    metrics.addMetric(
      HEALTH_METRICS.latencyP95,
      MetricUnit.Milliseconds,
      latencies[Math.min(latencies.length - 1, Math.ceil(latencies.length * 0.95) - 1)] as number,
    );
  metrics.addMetric(HEALTH_METRICS.passDuration, MetricUnit.Milliseconds, report.durationMs);
}
