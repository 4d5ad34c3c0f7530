/**
 * Streams the records of a persona file (JSON array, JSON lines or CSV) one by one, so an import
 * holds one record at a time whatever the file's size. Each record carries where it came from
 * (1-based line, 0-based record index) for the rejection report.
 */
import { createReadStream } from 'node:fs';
import { extname } from 'node:path';
import { createInterface } from 'node:readline';
import { parse as parseCsv } from 'csv-parse';
import { ProblemError, type FieldError } from '../http/problem';
import { parsePersonaInput } from '../persona/personaService';
import { SERVER_MANAGED_FIELDS, type PersonaInput } from '../persona/schema';
import { CSV_PARSE_OPTIONS, csvHeader, personaFromCsvCells, type CsvRow } from './personaCsv';

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
  const parser = stream.pipe(parseCsv(CSV_PARSE_OPTIONS));
  let header: string[] | undefined;
  let index = 0;
  for await (const row of parser as AsyncIterable<CsvRow>) {
    if (!header) header = csvHeader(row.record);
    else yield { index: index++, ...personaFromCsvCells(header, row) };
  }
}

/**
 * Validates one record as the API would; server-managed fields (as in an export) are dropped, and so
 * is an export's `tenant_id`: the API puts every imported persona in the caller's own tenant.
 */
export function validateRecord(record: FileRecord): { persona: PersonaInput } | { errors: FieldError[] } {
  if ('parseError' in record) return { errors: [{ pointer: '#', detail: record.parseError }] };
  let value = record.value;
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const copy = { ...(value as Record<string, unknown>) };
    for (const field of SERVER_MANAGED_FIELDS) delete copy[field];
    delete copy.tenant_id;
    value = copy;
  }
  try {
    return { persona: parsePersonaInput(value) };
  } catch (error) {
    if (error instanceof ProblemError) return { errors: error.errors ?? [{ pointer: '#', detail: error.message }] };
    throw error;
  }
}

/** A row of the file the API's validation accepted, with where it came from. */
export interface ValidatedRecord {
  index: number;
  line: number;
  persona: PersonaInput;
}

/**
 * The file's records validated as the API would (validateRecord), in file order: each valid one is
 * yielded, each rejected one handed to `reject` with its index, line and errors; `counts.rows` and
 * `counts.valid` are kept as they go. `stop` is asked before each record (a failure, an interrupt).
 */
export async function* validatedRecords(
  file: string,
  format: PersonaFileFormat,
  position: ReadPosition,
  counts: { rows: number; valid: number },
  reject: (rejection: { index: number; line: number; errors: FieldError[] }) => void,
  stop: () => boolean = () => false,
): AsyncGenerator<ValidatedRecord> {
  for await (const record of readPersonaFile(file, format, position)) {
    if (stop()) return;
    counts.rows++;
    const outcome = validateRecord(record);
    if ('errors' in outcome) {
      reject({ index: record.index, line: record.line, errors: outcome.errors });
      continue;
    }
    counts.valid++;
    yield { index: record.index, line: record.line, persona: outcome.persona };
  }
}
