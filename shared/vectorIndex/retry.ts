/** Delays between attempts for transient failures (network errors, 5xx, 429). */
export const DEFAULT_RETRY_DELAYS_MS = [100, 400, 1_600] as const;

/** Errors worth retrying: no HTTP status (network), or 408/429/5xx. A 4xx is a bug, not a blip. */
export function isTransient(error: unknown): boolean {
  const status = (error as { status?: unknown })?.status;
  if (typeof status !== 'number') return true;
  return status === 408 || status === 429 || status >= 500;
}

export async function withRetries<T>(operation: () => Promise<T>, delaysMs: readonly number[] = DEFAULT_RETRY_DELAYS_MS): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      const delay = delaysMs[attempt];
      if (delay === undefined || !isTransient(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay * (0.5 + Math.random())));
    }
  }
}
