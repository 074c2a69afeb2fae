import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** An Amazon States Language definition as JSON. */
export interface AslDefinition {
  readonly StartAt: string;
  readonly States: Record<string, Record<string, unknown> & { Type: string }>;
  readonly TimeoutSeconds?: number;
  readonly [key: string]: unknown;
}

export interface WorkflowDefinitions {
  readonly clone: AslDefinition;
  readonly deprovision: AslDefinition;
  readonly upgrade: AslDefinition;
}

/** Resolves the Fn::Join / Fn::GetAtt / Ref that CDK leaves in a definition string. */
export function resolveIntrinsics(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if (Array.isArray(v['Fn::Join'])) {
      const [sep, parts] = v['Fn::Join'] as [string, unknown[]];
      return parts.map(resolveIntrinsics).join(sep);
    }
    if (Array.isArray(v['Fn::GetAtt']))
      return `arn:aws:lambda:us-east-1:000000000000:function:${(v['Fn::GetAtt'] as string[])[0]}`;
    if (typeof v.Ref === 'string')
      return v.Ref === 'AWS::Partition'
        ? 'aws'
        : v.Ref === 'AWS::Region'
          ? 'us-east-1'
          : v.Ref === 'AWS::AccountId'
            ? '000000000000'
            : String(v.Ref);
  }
  throw new Error(`cannot resolve ${JSON.stringify(value)} in a state machine definition`);
}

const LIB_DIR = fileURLToPath(new URL('../lib/', import.meta.url));

/**
 * The synthesized definitions, cached in `cacheDir` under a key made of every file in lib/,
 * the aws-cdk-lib version and the namespace: any change to the CDK code synthesizes again.
 * Synthesis takes seconds; the CLI should not pay that on every command.
 */
export async function loadWorkflowDefinitions(
  cacheDir: string,
  namespace = 'cf',
): Promise<WorkflowDefinitions> {
  const key = await definitionsKey(namespace);
  const file = join(cacheDir, `definitions-${key.slice(0, 16)}.json`);
  try {
    const cached = JSON.parse(await readFile(file, 'utf8')) as {
      key: string;
      definitions: WorkflowDefinitions;
    };
    if (cached.key === key) return cached.definitions;
  } catch {
    // absent or unreadable: synthesize
  }
  // Loaded only on a cache miss: aws-cdk-lib takes a second to import. Once loaded, it wraps
  // every function of node:fs and child_process to time them, for the whole process (a
  // measurable share of a SQLite clone), unless told not to before it loads.
  process.env.CDK_NO_PERF_BUILTINS ??= '1';
  const { synthesizeWorkflowDefinitions } = await import('./synthesize-workflows.js');
  const definitions = synthesizeWorkflowDefinitions(namespace);
  await mkdir(cacheDir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify({ key, definitions }));
  await rename(tmp, file);
  return definitions;
}

async function definitionsKey(namespace: string): Promise<string> {
  const hash = createHash('sha256').update(namespace);
  const { version } = JSON.parse(
    await readFile(
      fileURLToPath(new URL('../node_modules/aws-cdk-lib/package.json', import.meta.url)),
      'utf8',
    ),
  ) as { version: string };
  hash.update(version);
  const files = (await readdir(LIB_DIR, { recursive: true })).filter((f) => f.endsWith('.ts')).sort();
  for (const f of files) hash.update(f).update(await readFile(join(LIB_DIR, f)));
  return hash.digest('hex');
}
