import {
  mysqlSplitterOptions,
  postgreSplitterOptions,
  type SplitterOptions,
  splitQuery,
  sqliteSplitterOptions,
} from 'dbgate-query-splitter';
import type { SplitResultItemRich } from 'dbgate-query-splitter/lib/splitQuery.js';
import type { EngineName } from './engine.js';

/** One statement of a script, with the 1-based line where its first token stands. */
export interface ScriptStatement {
  readonly index: number;
  readonly line: number;
  readonly text: string;
}

const DIALECTS: Record<EngineName, SplitterOptions> = {
  postgresql: postgreSplitterOptions,
  mysql: mysqlSplitterOptions,
  sqlite: sqliteSplitterOptions,
};

/**
 * Splits a script into statements with each dialect's quoting rules (dollar quotes,
 * backticks, comments), so a `;` inside a string never splits a statement.
 * Statements made only of comments are dropped.
 */
export function splitStatements(engine: EngineName, sql: string): ScriptStatement[] {
  const items = splitQuery(sql, { ...DIALECTS[engine], returnRichInfo: true }) as SplitResultItemRich[];
  const out: ScriptStatement[] = [];
  for (const item of items) {
    const lines = item.text.split('\n');
    let skipped = 0;
    while (skipped < lines.length && isBlankOrComment(lines[skipped] ?? '')) skipped++;
    if (skipped === lines.length) continue;
    const startLine = (item.trimStart ?? item.start).line;
    out.push({ index: out.length, line: startLine + skipped + 1, text: lines.slice(skipped).join('\n') });
  }
  return out;
}

function isBlankOrComment(line: string): boolean {
  const t = line.trim();
  return t === '' || t.startsWith('--');
}
