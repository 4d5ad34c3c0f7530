/**
 * A one-line progress display on stderr: a bar, counts, rate and ETA. On a terminal it redraws in
 * place; otherwise (CI logs, redirected output) it prints a plain line every few seconds, so logs
 * stay readable.
 */
export interface ProgressSample {
  /** Work done and total, in the unit the ETA is computed in (bytes of the input file). */
  done: number;
  total: number;
  /** Items finished, and what they are called. */
  items: number;
  unit: string;
  elapsedMs: number;
  /** Extra text, e.g. "12 rejected". */
  note?: string;
}

const formatDuration = (ms: number) => {
  if (!Number.isFinite(ms)) return '--:--';
  const seconds = Math.round(ms / 1000);
  const minutes = Math.floor(seconds / 60);
  return minutes >= 60 ? `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m` : `${minutes}:${String(seconds % 60).padStart(2, '0')}`;
};

export function describeProgress(sample: ProgressSample, width = 24): string {
  const fraction = sample.total > 0 ? Math.min(1, sample.done / sample.total) : 0;
  const filled = Math.round(fraction * width);
  const rate = sample.items / Math.max(sample.elapsedMs / 1000, 1e-3);
  const eta = fraction > 0 ? (sample.elapsedMs / fraction) * (1 - fraction) : Number.POSITIVE_INFINITY;
  return (
    `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ` +
    `${sample.items.toLocaleString('en-US')} ${sample.unit} ${rate.toFixed(0)}/s ETA ${formatDuration(eta)}` +
    (sample.note ? ` ${sample.note}` : '')
  );
}

export function progressBar(stream: NodeJS.WriteStream = process.stderr, plainIntervalMs = 5_000) {
  let lastPlain = 0;
  let drawn = false;
  return {
    update(sample: ProgressSample) {
      if (stream.isTTY) {
        stream.write(`\r${describeProgress(sample)}\x1b[K`);
        drawn = true;
      } else if (sample.elapsedMs - lastPlain >= plainIntervalMs) {
        lastPlain = sample.elapsedMs;
        stream.write(`${describeProgress(sample)}\n`);
      }
    },
    done() {
      if (drawn) stream.write('\n');
      drawn = false;
    },
  };
}
