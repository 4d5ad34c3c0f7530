/**
 * Parses a JSON-lines text (blank lines skipped), each value checked by `check`, which returns the
 * typed value or the reason it is not one; the error names the file, the line number and the line.
 */
export function parseJsonLines<T>(text: string, what: string, check: (value: unknown) => T | string): T[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line, at) => {
      const checked = check(JSON.parse(line));
      if (typeof checked === 'string') throw new Error(`${what} line ${at + 1} ${checked}: ${line.slice(0, 200)}`);
      return checked;
    });
}
