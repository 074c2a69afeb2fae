import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StateMachine } from 'aws-local-stepfunctions';
import { errorMessage, ValidationError } from '../functions/core/errors.js';
import type { WorkflowKind, WorkflowStarter } from '../functions/core/tenant-service.js';
import type { CloneWorkflowState } from '../functions/core/workflow/clone-workflow.js';
import type { DeprovisionState } from '../functions/core/workflow/deprovision-workflow.js';
import type { AslDefinition, WorkflowDefinitions } from './workflow-definitions.js';

// aws-local-stepfunctions 3.x calls Promise.withResolvers (Node 22+); Node 20 lacks it.
if (!('withResolvers' in Promise)) {
  Object.defineProperty(Promise, 'withResolvers', {
    value<T>() {
      let resolve!: (v: T) => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED';

/** One event of an execution's history, with the same state names as on AWS. */
export interface HistoryEvent {
  readonly type: string;
  readonly timestamp: string;
  readonly state?: string;
  readonly input?: unknown;
  readonly output?: unknown;
  readonly error?: string;
  readonly cause?: string;
  readonly attempt?: number;
}

export interface ExecutionRecord {
  readonly name: string;
  readonly stateMachine: WorkflowKind;
  readonly status: ExecutionStatus;
  readonly startedAt: string;
  readonly stoppedAt?: string;
  readonly input: unknown;
  readonly output?: unknown;
  readonly error?: string;
  readonly cause?: string;
  readonly events: readonly HistoryEvent[];
}

/** A Task state's local implementation: the same handler function the Lambda runs. */
export type TaskHandler = (input: unknown) => Promise<unknown>;

export interface LocalWorkflowRunnerOptions {
  readonly definitions: WorkflowDefinitions;
  readonly handlers: Readonly<Record<WorkflowKind, Readonly<Record<string, TaskHandler>>>>;
  /** Execution histories, one JSON file each. */
  readonly historyDir: string;
  /** Pause before a retry, instead of the definition's backoff (seconds) — local runs need not wait. */
  readonly retryIntervalMs?: number;
  /** Length of every Wait state (the instance poll) instead of the definition's seconds. */
  readonly waitMs?: number;
}

const NAME = /^[A-Za-z0-9-_]{1,80}$/;

/** How often a running execution's history is rewritten (its start and end are always written). */
const HISTORY_FLUSH_MS = 200;

/**
 * Runs the synthesized state machines with aws-local-stepfunctions. Every Task state is
 * overridden, by name, with the handler the Lambda would run. The execution name is the
 * idempotency key, as on AWS. Histories persist under the state directory; an execution
 * found RUNNING there from a process that died is resumed from its input (every step is
 * idempotent).
 */
export class LocalWorkflowRunner implements WorkflowStarter {
  private readonly machines: Record<WorkflowKind, StateMachine>;
  private readonly running = new Map<string, Promise<ExecutionRecord>>();
  private readonly starting = new Map<string, Promise<boolean>>();
  /**
   * Executions that have ended but whose final history is still being written: their record,
   * which this process answers from until the file has it, and the write.
   */
  private readonly settling = new Map<string, { record: ExecutionRecord; saved: Promise<void> }>();

  constructor(private readonly options: LocalWorkflowRunnerOptions) {
    // The library annotates the definition it is given (QueryLanguage): give it a copy, so
    // that `definitions` stays byte-for-byte what CDK synthesized.
    this.machines = {
      clone: new StateMachine(structuredClone(options.definitions.clone) as never),
      deprovision: new StateMachine(structuredClone(options.definitions.deprovision) as never),
      upgrade: new StateMachine(structuredClone(options.definitions.upgrade) as never),
    };
    for (const kind of ['clone', 'deprovision', 'upgrade'] as const) {
      for (const [stateName, state] of Object.entries(options.definitions[kind].States)) {
        if (state.Type === 'Task' && !options.handlers[kind][stateName])
          throw new Error(`no local handler for Task state "${stateName}" of the ${kind} workflow`);
      }
    }
  }

  /** The definitions this runner executes (for the test that compares them with CDK's). */
  get definitions(): WorkflowDefinitions {
    return this.options.definitions;
  }

  async start(
    kind: WorkflowKind,
    name: string,
    input: CloneWorkflowState | DeprovisionState,
  ): Promise<{ started: boolean }> {
    if (!NAME.test(name)) throw new ValidationError(`invalid execution name ${JSON.stringify(name)}`, 'name');
    // Decided once per name at a time: two concurrent starts must not both read "no history
    // yet" and run the same execution twice.
    const deciding = this.starting.get(name);
    if (deciding) {
      await deciding.catch(() => {});
      return { started: false };
    }
    const decision = (async () => {
      if (this.running.has(name)) return false;
      const previous = await this.describe(name);
      if (previous && previous.status !== 'RUNNING') return false;
      this.running.set(name, this.execute(kind, name, input));
      return true;
    })();
    this.starting.set(name, decision);
    try {
      return { started: await decision };
    } finally {
      this.starting.delete(name);
    }
  }

  /** Waits for an execution of this process; a finished one answers from its history. */
  async wait(name: string): Promise<ExecutionRecord> {
    const running = this.running.get(name);
    if (running) return running;
    const record = await this.describe(name);
    if (!record) throw new ValidationError(`no execution named ${name}`, 'name');
    return record;
  }

  /** Waits for every execution this process started. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.running.values()]);
    await Promise.allSettled([...this.settling.values()].map((s) => s.saved));
  }

  async describe(name: string): Promise<ExecutionRecord | null> {
    if (!NAME.test(name)) throw new ValidationError(`invalid execution name ${JSON.stringify(name)}`, 'name');
    const settling = this.settling.get(name);
    if (settling) return settling.record;
    try {
      return JSON.parse(await readFile(this.file(name), 'utf8')) as ExecutionRecord;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  async list(): Promise<ExecutionRecord[]> {
    let files: string[];
    try {
      files = (await readdir(this.options.historyDir)).filter((f) => f.endsWith('.json'));
    } catch {
      return [];
    }
    const records = await Promise.all(
      files.map(
        async (f) =>
          this.settling.get(f.slice(0, -'.json'.length))?.record ??
          (JSON.parse(await readFile(join(this.options.historyDir, f), 'utf8')) as ExecutionRecord),
      ),
    );
    return records.sort((a, b) => (a.startedAt < b.startedAt ? -1 : 1));
  }

  /** Executions left RUNNING by a process that stopped; the control plane resumes them at start. */
  async interrupted(): Promise<ExecutionRecord[]> {
    return (await this.list()).filter(
      (r) => r.status === 'RUNNING' && !this.running.has(r.name) && !this.settling.has(r.name),
    );
  }

  private file(name: string): string {
    return join(this.options.historyDir, `${name}.json`);
  }

  private async execute(kind: WorkflowKind, name: string, input: unknown): Promise<ExecutionRecord> {
    await mkdir(this.options.historyDir, { recursive: true, mode: 0o700 });
    const previous = await this.describe(name);
    const events: HistoryEvent[] = previous
      ? [...previous.events, { type: 'ExecutionResumed', timestamp: new Date().toISOString() }]
      : [];
    let record: ExecutionRecord = {
      name,
      stateMachine: kind,
      status: 'RUNNING',
      startedAt: previous?.startedAt ?? new Date().toISOString(),
      input,
      events,
    };
    // History is written when the execution starts (a RUNNING record with its input is what
    // a restarted process resumes), then at most every HISTORY_FLUSH_MS while it runs, and
    // whole at the end. Never more than one write at a time.
    let saving: Promise<void> | null = null;
    let timer: NodeJS.Timeout | null = null;
    const flush = () => {
      timer = null;
      if (saving) {
        schedule();
        return;
      }
      saving = this.save(record)
        .catch(() => {})
        .finally(() => {
          saving = null;
        });
    };
    const schedule = () => {
      timer ??= setTimeout(flush, HISTORY_FLUSH_MS);
    };
    flush();
    const retryIntervalOverrides: Record<string, number> = {};
    const waitTimeOverrides: Record<string, number> = {};
    const definition: AslDefinition = this.options.definitions[kind];
    for (const [stateName, state] of Object.entries(definition.States)) {
      if (state.Retry) retryIntervalOverrides[stateName] = this.options.retryIntervalMs ?? 20;
      if (state.Type === 'Wait') waitTimeOverrides[stateName] = this.options.waitMs ?? 1000;
    }
    const execution = this.machines[kind].run(input as never, {
      overrides: {
        taskResourceLocalHandlers: this.options.handlers[kind] as never,
        retryIntervalOverrides,
        waitTimeOverrides,
      },
      context: { Execution: { Name: name, Id: `local:${kind}:${name}` } },
    });
    const collect = (async () => {
      for await (const event of execution.eventLogs as AsyncIterable<Record<string, unknown>>) {
        const e = toHistoryEvent(event);
        if (e) {
          events.push(e);
          record = { ...record, events };
          schedule();
        }
      }
    })();
    try {
      const output = await execution.result;
      await collect;
      record = { ...record, status: 'SUCCEEDED', output, stoppedAt: new Date().toISOString(), events };
    } catch (error) {
      await collect.catch(() => {});
      const failed = events.findLast((e) => e.type === 'ExecutionFailed');
      record = {
        ...record,
        status: 'FAILED',
        error: failed?.error ?? (error as Error).name,
        cause: failed?.cause ?? errorMessage(error),
        stoppedAt: new Date().toISOString(),
        events,
      };
    }
    // The outcome is known: waiters have it now, and the final history is written behind
    // them (about 1.5 ms of every clone's latency otherwise). Until the file has it, this
    // process answers describe() and list() from memory, so nobody reads the RUNNING record
    // on disk; drain() waits for the write. A crash before it lands leaves a RUNNING history,
    // which the next start resumes: every step is idempotent, so the execution ends the same.
    if (timer) clearTimeout(timer);
    const final = record;
    // A write that fails keeps the record in memory: this process still answers for it.
    const saved = (async () => {
      while (saving) await saving;
      await this.save(final);
      if (this.settling.get(name)?.record === final) this.settling.delete(name);
    })().catch(() => {});
    this.settling.set(name, { record: final, saved });
    this.running.delete(name);
    return final;
  }

  private async save(record: ExecutionRecord): Promise<void> {
    const file = this.file(record.name);
    const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
    await writeFile(tmp, JSON.stringify(record, null, 1), { mode: 0o600 });
    await rename(tmp, file);
  }
}

function toHistoryEvent(event: Record<string, unknown>): HistoryEvent | null {
  const state = event.state as { name?: string; input?: unknown; output?: unknown } | undefined;
  const base = { type: String(event.type), timestamp: new Date(Number(event.timestamp)).toISOString() };
  // A Map item's own states: on AWS a Distributed Map runs each item as a child execution with
  // a history of its own, and the parent's history only says how the map run went. Kept here
  // for a failed item alone, which is what an operator looks for; a 1,000-tenant upgrade would
  // otherwise rewrite thousands of events on every history flush.
  if (event.index !== undefined) {
    if (event.type !== 'MapIterationFailed') return null;
    const parent = event.parentState as { name?: string } | undefined;
    return {
      ...base,
      state: parent?.name,
      error: String(event.Error ?? 'States.TaskFailed'),
      cause: `item ${Number(event.index)}: ${String(event.Cause ?? '')}`,
    };
  }
  switch (event.type) {
    case 'ExecutionStarted':
      return { ...base, input: event.input };
    case 'ExecutionSucceeded':
      return { ...base, output: event.output };
    case 'ExecutionFailed':
      return { ...base, error: String(event.Error), cause: String(event.Cause ?? '') };
    case 'StateEntered':
      return { ...base, state: state?.name, input: state?.input };
    case 'StateExited':
      return { ...base, state: state?.name, output: state?.output };
    case 'StateFailed':
      return { ...base, state: state?.name, error: String(event.Error), cause: String(event.Cause ?? '') };
    case 'StateRetried':
      return {
        ...base,
        state: state?.name,
        attempt: Number((event.retry as { attempt?: number })?.attempt ?? 0),
      };
    case 'StateCaught':
      return { ...base, state: state?.name };
    default:
      return null;
  }
}
