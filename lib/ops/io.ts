/** Where a command writes. The CLI passes process.stdout/stderr; tests pass collectors. */
export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** Long commands (redrive, reconcile) stop at the next safe point once this aborts. */
  signal?: AbortSignal;
  /** where `secrets set` reads values: a terminal (prompted, not echoed) or a pipe */
  stdin?: SecretInput;
}

/** process.stdin as far as the CLI uses it. */
export type SecretInput = NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?(mode: boolean): unknown };

/** Exit codes: 0 done, 1 failed or not found, 2 usage error or no target. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

export function println(stream: CliIo['stdout'], text = ''): void {
  stream.write(`${text}\n`);
}

/** Machine-readable output: one JSON document on stdout. */
export function printJson(io: CliIo, value: unknown): void {
  println(io.stdout, JSON.stringify(value, null, 2));
}

/** A plain-text table: columns padded to their widest cell, the last one left ragged. */
export function renderTable(headers: string[], rows: (string | number | undefined)[][]): string {
  const cells = [headers, ...rows.map((row) => row.map((cell) => (cell === undefined ? '' : String(cell))))];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? '').length)));
  return cells
    .map((row) =>
      row
        .map((cell, column) => (column === row.length - 1 ? cell : (cell ?? '').padEnd(widths[column] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Indents every line of a block (e.g. a JSON request body under its attempt). */
export function indent(text: string, by: string): string {
  return text
    .split('\n')
    .map((line) => `${by}${line}`)
    .join('\n');
}
