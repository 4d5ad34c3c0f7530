/** Small pieces every view uses: links, problem messages, trait inputs, formatting. */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { ApiError, problemText, TRAITS, type Trait, type Traits } from './api';

export const href = (path: string) => `#${path}`;

export function navigate(path: string): void {
  window.location.hash = path;
}

let firstView = true;

/**
 * The page heading takes focus on every view change, so keyboard and screen-reader users start
 * there; not on the page load itself, where the browser starts at the top (the skip link).
 */
export function PageTitle(props: { children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    if (firstView) firstView = false;
    else ref.current?.focus({ preventScroll: false });
  }, []);
  return (
    <h1 tabIndex={-1} ref={ref}>
      {props.children}
    </h1>
  );
}

export function ProblemMessage(props: { error: unknown; retry?: () => void }) {
  const error = props.error;
  const detail = problemText(error);
  const title = error instanceof ApiError && error.status ? `${error.status} ${error.problem.title}` : 'Error';
  return (
    <div class="problem" role="alert">
      <strong>{title}</strong>: {detail}
      {props.retry && (
        <>
          {' '}
          <button type="button" class="secondary" onClick={props.retry}>
            Retry
          </button>
        </>
      )}
    </div>
  );
}

export const formatScore = (score: number) => (Math.abs(score) >= 0.001 || score === 0 ? score.toFixed(3) : score.toExponential(2));

export const formatDate = (iso: string | undefined) => (iso ? new Date(iso).toLocaleString() : '');

/** What a score means, in words, by the API's score_type. */
export const SCORE_MEANING: Record<string, string> = {
  cosine_similarity: 'cosine similarity, higher is closer',
  euclidean_distance: 'distance between profiles, lower is closer',
  rrf: 'reciprocal rank fusion, higher is better',
};

export const scoreMeaning = (scoreType: string) => SCORE_MEANING[scoreType] ?? scoreType.replace(/_/g, ' ');

export const NEUTRAL_TRAITS = (): Traits => Object.fromEntries(TRAITS.map((trait) => [trait, 0.5])) as Traits;

/** Five sliders with number boxes; field errors at `traits.<trait>` are shown beside each. */
export function TraitInputs(props: { idPrefix: string; value: Traits; onChange: (next: Traits) => void; errors?: Record<string, string> }) {
  const set = (trait: Trait, raw: string) => props.onChange({ ...props.value, [trait]: raw === '' ? Number.NaN : Number(raw) });
  return (
    <div class="trait-inputs">
      {TRAITS.map((trait) => {
        const id = `${props.idPrefix}-${trait}`;
        const error = props.errors?.[`traits.${trait}`];
        const value = props.value[trait];
        return (
          <div class="trait-input">
            <label for={id}>{trait}</label>
            <input
              type="range"
              min="0"
              max="1"
              step="0.01"
              value={Number.isFinite(value) ? value : 0}
              aria-label={`${trait} slider`}
              onInput={(event) => set(trait, event.currentTarget.value)}
            />
            <input
              id={id}
              name={`traits.${trait}`}
              type="number"
              min="0"
              max="1"
              step="0.01"
              inputMode="decimal"
              value={Number.isFinite(value) ? String(value) : ''}
              aria-invalid={error ? 'true' : undefined}
              aria-describedby={error ? `${id}-error` : undefined}
              onInput={(event) => set(trait, event.currentTarget.value)}
            />
            {error && (
              <span class="field-error" id={`${id}-error`}>
                {error}
              </span>
            )}
          </div>
        );
      })}
    </div>
  );
}

export function TraitBars(props: { traits: Traits }) {
  return (
    <span class="trait-bars" aria-label={TRAITS.map((trait) => `${trait} ${props.traits[trait].toFixed(2)}`).join(', ')} role="img">
      {TRAITS.map((trait) => (
        <span class="trait-bar" title={`${trait} ${props.traits[trait].toFixed(2)}`}>
          <span class="fill" ref={(element) => {
            if (element) element.style.height = `${Math.round(props.traits[trait] * 100)}%`;
          }} />
        </span>
      ))}
    </span>
  );
}
