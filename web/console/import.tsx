/**
 * Import a JSON lines, JSON array or CSV file (the CLI's formats: shared/operations/personaCsv.ts)
 * through POST /personas/batch, 100 rows per request, each request with its own Idempotency-Key
 * (a retried batch never writes twice). Progress as rows are sent; a report line per rejected row.
 */
import { parse as parseCsv } from 'csv-parse/browser/esm/sync';
import { useState } from 'preact/hooks';
import { CSV_COLUMNS, CSV_PARSE_OPTIONS, csvHeader, personaFromCsvCells, type CsvRow } from '../../shared/operations/personaCsv';
import { ApiError, client, newIdempotencyKey, type BatchResult, type PersonaInput } from './api';
import { reloadAll } from './store';
import { PageTitle, ProblemMessage } from './ui';

const BATCH_SIZE = 100;
/** A batch answered with per-item 503s (not written) is sent again with the same key, at most this often. */
const BATCH_ATTEMPTS = 3;

interface FileRow {
  /** Where the row is in the file: a line, or an array element. */
  where: string;
  value?: unknown;
  parseError?: string;
}

interface RowError {
  where: string;
  pointer: string;
  detail: string;
}

export function rowsFromFile(name: string, text: string): FileRow[] {
  const extension = name.toLowerCase().split('.').at(-1);
  if (extension === 'jsonl' || extension === 'ndjson') {
    return text.split(/\r?\n/).flatMap((line, index): FileRow[] => {
      if (line.trim() === '') return [];
      try {
        return [{ where: `line ${index + 1}`, value: JSON.parse(line) as unknown }];
      } catch (error) {
        return [{ where: `line ${index + 1}`, parseError: `not valid JSON: ${(error as Error).message}` }];
      }
    });
  }
  if (extension === 'json') {
    const parsed = JSON.parse(text) as unknown;
    if (!Array.isArray(parsed)) throw new Error('A .json import file must be one JSON array of personas; use .jsonl for one persona per line.');
    return parsed.map((value, index) => ({ where: `item ${index + 1}`, value }));
  }
  if (extension === 'csv') {
    const [headerRow, ...rows] = parseCsv(text, CSV_PARSE_OPTIONS) as unknown as CsvRow[];
    if (!headerRow) throw new Error('The CSV file is empty; its first row must name the columns.');
    const header = csvHeader(headerRow.record);
    return rows.map((row) => {
      const { line, ...result } = personaFromCsvCells(header, row);
      return { where: `line ${line}`, ...result };
    });
  }
  throw new Error('Name the file .jsonl, .json or .csv: the extension tells its format.');
}

export function ImportView() {
  const [file, setFile] = useState<File | undefined>();
  const [progress, setProgress] = useState<{ sent: number; total: number } | undefined>();
  const [report, setReport] = useState<{ created: number; errors: RowError[] } | undefined>();
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);

  async function run(event: Event) {
    event.preventDefault();
    if (!file) return;
    setBusy(true);
    setError(undefined);
    setReport(undefined);
    const errors: RowError[] = [];
    let created = 0;
    try {
      const rows = rowsFromFile(file.name, await file.text());
      for (const row of rows) if (row.parseError) errors.push({ where: row.where, pointer: '', detail: row.parseError });
      const valid = rows.filter((row) => !row.parseError);
      setProgress({ sent: rows.length - valid.length, total: rows.length });
      for (let start = 0; start < valid.length; start += BATCH_SIZE) {
        const batch = valid.slice(start, start + BATCH_SIZE);
        const key = newIdempotencyKey();
        let result: BatchResult | undefined;
        for (let attempt = 1; attempt <= BATCH_ATTEMPTS; attempt++) {
          // Rows go as read: the API validates each and reports the bad ones by their index.
          ({ result } = await client.createPersonas(batch.map((row) => row.value as PersonaInput), { idempotencyKey: key }));
          if (!result.results.some((item) => item.status === 503)) break;
          await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
        }
        for (const item of result!.results) {
          const row = batch[item.index]!;
          if (item.status === 201) created++;
          else {
            for (const problem of item.errors ?? [{ pointer: '', detail: `not written (status ${item.status}); import the file again` }]) {
              // The batch names fields inside its body (#/personas/<i>/traits/openness); the report names them in the row.
              errors.push({ where: row.where, pointer: problem.pointer.replace(/^#\/personas\/\d+/, '#'), detail: problem.detail });
            }
          }
        }
        setProgress({ sent: rows.length - valid.length + Math.min(start + BATCH_SIZE, valid.length), total: rows.length });
      }
      setReport({ created, errors });
      reloadAll();
    } catch (caught) {
      setError(caught instanceof ApiError || caught instanceof Error ? caught : new Error(String(caught)));
      setReport({ created, errors });
    } finally {
      setBusy(false);
    }
  }

  return (
    <section>
      <PageTitle>Import personas</PageTitle>
      <p>
        A <code>.jsonl</code> file (one persona per line), a <code>.json</code> array, or a <code>.csv</code> file with the columns{' '}
        <code>{CSV_COLUMNS.join(', ')}</code> (list cells separated by <code>;</code>). Valid rows are created; each rejected row is listed with its
        errors.
      </p>
      <form onSubmit={run}>
        <div class="field">
          <label for="import-file">File</label>
          <input id="import-file" type="file" accept=".jsonl,.ndjson,.json,.csv" onChange={(event) => setFile(event.currentTarget.files?.[0])} />
        </div>
        <button type="submit" disabled={!file || busy}>
          {busy ? 'Importing…' : 'Import'}
        </button>
      </form>
      {progress && (
        <div class="progress" data-testid="import-progress">
          <label for="import-progress">
            {progress.sent} of {progress.total} rows sent
          </label>
          <progress id="import-progress" max={progress.total || 1} value={progress.sent} />
        </div>
      )}
      {error !== undefined && <ProblemMessage error={error} />}
      {report && (
        <section aria-labelledby="report-heading" data-testid="import-report">
          <h2 id="report-heading">
            {report.created} created, {new Set(report.errors.map((item) => item.where)).size} rejected
          </h2>
          {report.errors.length > 0 && (
            <div class="table-scroll">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Row</th>
                    <th scope="col">Field</th>
                    <th scope="col">Error</th>
                  </tr>
                </thead>
                <tbody>
                  {report.errors.map((item) => (
                    <tr>
                      <td>{item.where}</td>
                      <td>
                        <code>{item.pointer || '—'}</code>
                      </td>
                      <td>{item.detail}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
      )}
    </section>
  );
}
