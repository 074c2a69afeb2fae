import { Duration } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  Metric,
  SingleValueWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { HEALTH_METRICS, HEALTH_METRICS_NAMESPACE } from '../../functions/adapters/health-metrics.js';

export interface HealthMonitoringProps {
  /** The health monitor's Lambda (handler `checkHealth`). */
  readonly monitor: IFunction;
  /** The reconciler's Lambda (handler `reconcileFleet`), run every hour. */
  readonly reconciler?: IFunction;
}

/**
 * The health monitor's schedule (EventBridge's shortest, one minute; the local control plane
 * runs it every 30 s), its alarms (an unreachable clone, an isolation failure, drift) and a
 * dashboard. The metrics are the EMF that the monitor prints (functions/adapters/health-metrics.ts).
 * The alarms have no action: point them at your paging topic.
 */
export class HealthMonitoring extends Construct {
  readonly alarms: Record<'unreachable' | 'isolation' | 'drift', Alarm>;
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: HealthMonitoringProps) {
    super(scope, id);
    new Rule(this, 'Schedule', {
      description: 'Clone Factory health monitor: one pass over every READY clone',
      schedule: Schedule.rate(Duration.minutes(1)),
      targets: [new LambdaFunction(props.monitor, { retryAttempts: 0 })],
    });
    if (props.reconciler)
      new Rule(this, 'ReconcileSchedule', {
        description: 'Clone Factory reconciler: orphans, dangling and stuck entries',
        schedule: Schedule.rate(Duration.hours(1)),
        targets: [new LambdaFunction(props.reconciler, { retryAttempts: 0 })],
      });
    const metric = (name: string, statistic = 'Maximum') =>
      new Metric({
        namespace: HEALTH_METRICS_NAMESPACE,
        metricName: name,
        dimensionsMap: { service: 'clonefactory-health' },
        statistic,
        period: Duration.minutes(1),
      });
    const alarm = (alarmId: string, name: string, description: string) =>
      new Alarm(this, alarmId, {
        alarmDescription: description,
        metric: metric(name),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        // No pass, no figures: the monitor's own errors are its Lambda's alarm to raise.
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
    this.alarms = {
      unreachable: alarm(
        'UnreachableAlarm',
        HEALTH_METRICS.unreachable,
        'A READY clone does not open as its tenant',
      ),
      isolation: alarm(
        'IsolationAlarm',
        HEALTH_METRICS.isolationFailures,
        "A tenant's login opened another tenant's database",
      ),
      drift: alarm(
        'DriftAlarm',
        HEALTH_METRICS.drifted,
        "A clone's schema differs from its recorded version",
      ),
    };
    this.dashboard = new Dashboard(this, 'Dashboard', {
      widgets: [
        [
          new SingleValueWidget({
            title: 'Clones by health',
            metrics: [
              metric(HEALTH_METRICS.healthy),
              metric(HEALTH_METRICS.degraded),
              metric(HEALTH_METRICS.unreachable),
            ],
            width: 12,
          }),
          new GraphWidget({
            title: 'Isolation and drift',
            left: [metric(HEALTH_METRICS.isolationFailures), metric(HEALTH_METRICS.drifted)],
            right: [metric(HEALTH_METRICS.isolationProbes, 'Sum')],
            width: 12,
          }),
        ],
        [
          new GraphWidget({
            title: 'Tenant query latency p95 (ms)',
            left: [metric(HEALTH_METRICS.latencyP95)],
            width: 12,
          }),
          new GraphWidget({
            title: 'Health pass duration (ms)',
            left: [metric(HEALTH_METRICS.passDuration)],
            width: 12,
          }),
        ],
      ],
    });
  }
}
