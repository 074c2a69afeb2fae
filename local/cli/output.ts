import { type Command, CommanderError } from 'commander';
import { CloneFactoryError, ValidationError } from '../../functions/core/errors.js';

/** Exit codes: 0 done, 1 the operation failed, 2 the request was invalid. */
export const EXIT = { ok: 0, failed: 1, invalid: 2 } as const;

/** Writes a value as pretty JSON on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Formats rows as an aligned plain-text table. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/**
 * Parses and runs the program, mapping errors to messages and exit codes. Known errors print
 * their message only; anything else prints its stack, because it is a bug.
 */
export async function runCli(program: Command, argv: readonly string[]): Promise<void> {
  // addCommand() does not pass settings down, so every command gets the override itself.
  const override = (cmd: Command) => {
    cmd.exitOverride();
    for (const sub of cmd.commands) override(sub);
  };
  override(program);
  try {
    await program.parseAsync(argv as string[]);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.invalid;
      return;
    }
    if (error instanceof ValidationError || (error as { status?: number }).status === 400) {
      process.stderr.write(`clonectl: ${(error as Error).message}\n`);
      process.exitCode = EXIT.invalid;
      return;
    }
    if (error instanceof CloneFactoryError) {
      process.stderr.write(`clonectl: ${error.message}\n`);
      process.exitCode = EXIT.failed;
      return;
    }
    process.stderr.write(`clonectl: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exitCode = EXIT.failed;
  }
}
