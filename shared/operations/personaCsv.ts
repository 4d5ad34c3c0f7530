/**
 * The CSV layout of persona files: which columns exist and how a row becomes the persona object
 * the API takes. No Node modules here: the CLI's importer and the console's import (in the
 * browser) both use it.
 */
import { TRAIT_NAMES } from '../persona/traitNames';

/** CSV list cells: `;`-separated, or a JSON array when an item itself contains `;`. */
export const CSV_LIST_COLUMNS = ['domain', 'modes', 'beliefs', 'signature_phrases'] as const;
export const CSV_TEXT_COLUMNS = ['name', 'humor_usage', 'emotional_style'] as const;
export const CSV_COLUMNS: readonly string[] = [...CSV_TEXT_COLUMNS, ...CSV_LIST_COLUMNS, ...TRAIT_NAMES];

/**
 * How csv-parse reads a persona file. Rows come as arrays and are matched to the header by
 * personaFromCsvCells, so a row of the wrong width is rejected alone (csv-parse's own column check
 * counts bad rows cumulatively, and every row after the first bad one looked bad too).
 */
export const CSV_PARSE_OPTIONS = { bom: true, trim: true, skip_empty_lines: true, relax_column_count: true, info: true } as const;

/** One row as csv-parse gives it with CSV_PARSE_OPTIONS. */
export interface CsvRow {
  record: string[];
  info: { lines: number };
}

/** The first row: the column names, every one known. */
export function csvHeader(record: string[]): string[] {
  const unknown = record.filter((column) => !CSV_COLUMNS.includes(column));
  if (unknown.length > 0) {
    throw new Error(`unknown CSV column(s) ${unknown.map((column) => `'${column}'`).join(', ')}; the columns are: ${CSV_COLUMNS.join(', ')}`);
  }
  return record;
}

/** A data row as a persona, or why it is not one, with the line it ends on. */
export function personaFromCsvCells(header: string[], { record, info }: CsvRow): { line: number; value: unknown } | { line: number; parseError: string } {
  if (record.length !== header.length) {
    return { line: info.lines, parseError: `the row has ${record.length} fields; the header has ${header.length} (a missing or extra comma, or an unquoted comma inside a cell)` };
  }
  return { line: info.lines, value: personaFromCsvRow(Object.fromEntries(header.map((column, position) => [column, record[position]!]))) };
}

/**
 * A CSV row as the persona object the API takes. Empty cells are left out, so the schema reports
 * a missing required field by name; cells that do not parse are kept as text, so the schema
 * reports them with the field's own message.
 */
export function personaFromCsvRow(row: Record<string, string>): Record<string, unknown> {
  const persona: Record<string, unknown> = {};
  for (const column of CSV_TEXT_COLUMNS) if (row[column]) persona[column] = row[column];
  for (const column of CSV_LIST_COLUMNS) {
    const cell = row[column];
    if (!cell) continue;
    if (cell.startsWith('[')) {
      try {
        persona[column] = JSON.parse(cell) as unknown;
        continue;
      } catch {
        // Not a JSON array after all: split it like any other list cell.
      }
    }
    persona[column] = cell.split(';').map((item) => item.trim()).filter((item) => item !== '');
  }
  const traits: Record<string, unknown> = {};
  for (const trait of TRAIT_NAMES) {
    const cell = row[trait];
    if (!cell) continue;
    const number = Number(cell);
    traits[trait] = Number.isFinite(number) ? number : cell;
  }
  persona.traits = traits;
  return persona;
}
