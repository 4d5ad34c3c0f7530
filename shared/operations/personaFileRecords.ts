/**
 * Streams the records of a persona file (JSON array, JSON lines or CSV) one by one, so an import
 * holds one record at a time whatever the file's size. Each record carries where it came from
 * (1-based line, 0-based record index) for the rejection report.
 */
import { createReadStream } from 'node:fs';
import { extname } from 'node:path';
import { createInterface } from 'node:readline';
import { parse as parseCsv } from 'csv-parse';
import { TRAIT_NAMES } from '../persona/schema';

export type PersonaFileFormat = 'json' | 'jsonl' | 'csv';

export const PERSONA_FILE_FORMATS: readonly PersonaFileFormat[] = ['json', 'jsonl', 'csv'];

export type FileRecord =
  | { index: number; line: number; value: unknown }
  /** The record could not even be parsed (bad JSON, a CSV row of the wrong width). */
  | { index: number; line: number; parseError: string };

/** Bytes read so far, for progress and ETA. */
export interface ReadPosition {
  bytesRead: number;
}

export function formatFromFileName(file: string): PersonaFileFormat {
  const extension = extname(file).toLowerCase();
  if (extension === '.json') return 'json';
  if (extension === '.jsonl' || extension === '.ndjson') return 'jsonl';
  if (extension === '.csv') return 'csv';
  throw new Error(`Cannot tell the format of ${file} from its extension; name it .json, .jsonl or .csv, or pass --format json|jsonl|csv.`);
}

/** CSV list cells: `;`-separated, or a JSON array when an item itself contains `;`. */
export const CSV_LIST_COLUMNS = ['domain', 'modes', 'beliefs', 'signature_phrases'] as const;
export const CSV_TEXT_COLUMNS = ['name', 'humor_usage', 'emotional_style'] as const;
export const CSV_COLUMNS: readonly string[] = [...CSV_TEXT_COLUMNS, ...CSV_LIST_COLUMNS, ...TRAIT_NAMES];

export function readPersonaFile(file: string, format: PersonaFileFormat, position: ReadPosition = { bytesRead: 0 }): AsyncGenerator<FileRecord> {
  const stream = createReadStream(file);
  stream.on('data', (chunk) => (position.bytesRead += chunk.length));
  if (format === 'jsonl') return jsonLinesRecords(stream);
  if (format === 'csv') return csvRecords(stream);
  stream.setEncoding('utf8');
  return jsonArrayRecords(stream);
}

async function* jsonLinesRecords(stream: NodeJS.ReadableStream): AsyncGenerator<FileRecord> {
  let line = 0;
  let index = 0;
  for await (const text of createInterface({ input: stream, crlfDelay: Infinity })) {
    line++;
    if (text.trim() === '') continue;
    yield parseJsonRecord(text, index++, line);
  }
}

function parseJsonRecord(text: string, index: number, line: number): FileRecord {
  try {
    return { index, line, value: JSON.parse(text) as unknown };
  } catch (error) {
    return { index, line, parseError: `not valid JSON: ${(error as Error).message}` };
  }
}

/**
 * An incremental splitter for a top-level JSON array: it tracks strings, escapes and nesting,
 * and cuts the text of each element at the comma or bracket that ends it, so only one element
 * is ever held in memory.
 */
async function* jsonArrayRecords(chunks: AsyncIterable<string>): AsyncGenerator<FileRecord> {
  let line = 1;
  let started = false;
  let ended = false;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let elementStarted = false;
  let elementLine = 0;
  let pending = '';
  let index = 0;
  for await (const chunk of chunks) {
    let pieceStart = 0;
    for (let i = 0; i < chunk.length; i++) {
      const char = chunk[i]!;
      if (char === '\n') line++;
      if (ended) {
        if (!/\s/.test(char)) throw new Error(`line ${line}: unexpected text after the end of the JSON array`);
        continue;
      }
      if (!started) {
        if (char === '[') {
          started = true;
          pieceStart = i + 1;
        } else if (!/[\s\uFEFF]/.test(char)) {
          throw new Error(`line ${line}: a .json import file must be one JSON array of personas ([{...}, {...}]); use .jsonl for one persona per line`);
        }
        continue;
      }
      if (inString) {
        if (escaped) escaped = false;
        else if (char === '\\') escaped = true;
        else if (char === '"') inString = false;
        continue;
      }
      if (depth === 0 && (char === ',' || char === ']')) {
        const text = (pending + chunk.slice(pieceStart, i)).trim();
        pending = '';
        pieceStart = i + 1;
        if (text !== '') yield parseJsonRecord(text, index++, elementLine);
        else if (char === ',') throw new Error(`line ${line}: empty element in the JSON array (two commas, or a comma after [)`);
        elementStarted = false;
        if (char === ']') ended = true;
        continue;
      }
      if (!elementStarted && !/\s/.test(char)) {
        elementStarted = true;
        elementLine = line;
      }
      if (char === '"') inString = true;
      else if (char === '{' || char === '[') depth++;
      else if (char === '}' || char === ']') depth--;
      if (depth < 0) throw new Error(`line ${line}: unbalanced '${char}' in the JSON array`);
    }
    // The unfinished element's text waits for the next chunk (one element at most).
    if (started && !ended) pending += chunk.slice(pieceStart);
  }
  if (!started) throw new Error('the file is empty; a .json import file must be one JSON array of personas');
  if (!ended) throw new Error(`line ${line}: the file ends inside the JSON array (no closing ])`);
}

async function* csvRecords(stream: NodeJS.ReadableStream): AsyncGenerator<FileRecord> {
  // Rows come as arrays and are matched to the header here, so a row of the wrong width is
  // rejected alone (csv-parse's own column check counts bad rows cumulatively, and every row
  // after the first bad one looked bad too).
  const parser = stream.pipe(parseCsv({ bom: true, trim: true, skip_empty_lines: true, relax_column_count: true, info: true }));
  let header: string[] | undefined;
  let index = 0;
  for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
    if (!header) {
      const unknown = record.filter((column) => !CSV_COLUMNS.includes(column));
      if (unknown.length > 0) {
        throw new Error(`unknown CSV column(s) ${unknown.map((column) => `'${column}'`).join(', ')}; the columns are: ${CSV_COLUMNS.join(', ')}`);
      }
      header = record;
      continue;
    }
    const line = info.lines;
    if (record.length !== header.length) {
      yield { index: index++, line, parseError: `the row has ${record.length} fields; the header has ${header.length} (a missing or extra comma, or an unquoted comma inside a cell)` };
      continue;
    }
    yield { index: index++, line, value: personaFromCsvRow(Object.fromEntries(header.map((column, position) => [column, record[position]!]))) };
  }
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
