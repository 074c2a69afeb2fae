import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  GetExecutionHistoryCommand,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { ValidationError } from '../../core/errors.js';
import type { WorkflowKind, WorkflowStarter } from '../../core/tenant-service.js';

/** Starts and reads the CDK-deployed state machines. The execution name is the idempotency key. */
export class StepFunctionsWorkflows implements WorkflowStarter {
  private readonly client: SFNClient;

  constructor(
    /** State machine ARNs; a kind without one is refused. */
    private readonly machines: Readonly<Partial<Record<WorkflowKind, string>>>,
    client?: SFNClient,
  ) {
    this.client = client ?? new SFNClient({});
  }

  async start(kind: WorkflowKind, name: string, input: unknown): Promise<{ started: boolean }> {
    const stateMachineArn = this.machines[kind];
    if (!stateMachineArn) throw new ValidationError(`the ${kind} workflow is not deployed here`);
    try {
      await this.client.send(
        new StartExecutionCommand({
          stateMachineArn,
          name,
          input: JSON.stringify(input),
        }),
      );
      return { started: true };
    } catch (error) {
      // Same name and same input: the execution exists already, which is the idempotent case.
      if (error instanceof ExecutionAlreadyExists) return { started: false };
      throw error;
    }
  }

  /** The execution and its history, or null when there is none of that name. */
  async describe(name: string): Promise<Record<string, unknown> | null> {
    for (const arn of Object.values(this.machines).filter((a): a is string => Boolean(a))) {
      const executionArn = `${arn.replace(':stateMachine:', ':execution:')}:${name}`;
      try {
        const e = await this.client.send(new DescribeExecutionCommand({ executionArn }));
        const history = await this.client.send(
          new GetExecutionHistoryCommand({ executionArn, maxResults: 1000, includeExecutionData: true }),
        );
        return {
          name: e.name,
          status: e.status,
          startedAt: e.startDate?.toISOString(),
          stoppedAt: e.stopDate?.toISOString(),
          error: e.error,
          cause: e.cause,
          events: (history.events ?? []).map((ev) => ({
            type: ev.type,
            timestamp: ev.timestamp?.toISOString(),
            state: ev.stateEnteredEventDetails?.name ?? ev.stateExitedEventDetails?.name,
          })),
        };
      } catch (error) {
        if (error instanceof ExecutionDoesNotExist) continue;
        throw error;
      }
    }
    return null;
  }
}
