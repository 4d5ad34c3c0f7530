/** Search: one box, the API's modes (read from its document), filters, results with scores. */
import { useState } from 'preact/hooks';
import { ApiError, client, type SearchRequest, type SearchResults, type Traits } from './api';
import { modeInputs, type ApiFacts } from './apiDocument';
import { FilterPanel, emptyFilter, toApiFilter, type FilterState } from './filters';
import { NEUTRAL_TRAITS, PageTitle, ProblemMessage, TraitBars, TraitInputs, formatScore, href, scoreMeaning } from './ui';

const PAGE = 20;

export function SearchView(props: { facts: ApiFacts }) {
  const { facts } = props;
  const [mode, setMode] = useState(facts.defaultSearchMode);
  const [query, setQuery] = useState('');
  const [traits, setTraits] = useState<Traits>(NEUTRAL_TRAITS);
  const [filter, setFilter] = useState<FilterState>(emptyFilter);
  const [flags, setFlags] = useState<Record<string, boolean>>({});
  const [results, setResults] = useState<SearchResults | undefined>();
  const [error, setError] = useState<unknown>();
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const inputs = modeInputs(mode);

  async function run(offset: number) {
    setBusy(true);
    setError(undefined);
    setFieldErrors({});
    const body: Record<string, unknown> = { mode, limit: PAGE, offset };
    if (inputs.query) body.query = query;
    if (inputs.traits) body.traits = traits;
    const apiFilter = toApiFilter(filter);
    if (apiFilter) body.filter = apiFilter;
    for (const flag of facts.searchFlags) if (flags[flag.name]) body[flag.name] = true;
    try {
      // Built from the API document's facts (modes, flags); the API checks what the page cannot.
      const data = await client.searchPersonas(body as SearchRequest);
      setResults(offset === 0 || !results ? data : { ...data, items: [...results.items, ...data.items] });
    } catch (caught) {
      setError(caught);
      if (caught instanceof ApiError && caught.errors.length) {
        setFieldErrors(Object.fromEntries(caught.errors.map((item) => [item.pointer.replace(/^#\//, '').replace(/\//g, '.'), item.detail])));
      }
    } finally {
      setBusy(false);
    }
  }

  const queryError = fieldErrors.query;
  return (
    <section>
      <PageTitle>Search</PageTitle>
      <form
        class="search-form"
        onSubmit={(event) => {
          event.preventDefault();
          void run(0);
        }}
      >
        <fieldset class="modes">
          <legend>Mode</legend>
          {facts.searchModes.map((name) => (
            <label class="mode">
              <input type="radio" name="mode" value={name} checked={mode === name} onChange={() => setMode(name)} /> {name}
            </label>
          ))}
          {facts.modeDescriptions[mode] && <p class="hint">{facts.modeDescriptions[mode]}</p>}
        </fieldset>
        {inputs.query && (
          <div class="field">
            <label for="search-query">Text</label>
            <input
              id="search-query"
              type="search"
              value={query}
              placeholder="e.g. a physicist fond of thought experiments"
              aria-invalid={queryError ? 'true' : undefined}
              aria-describedby={queryError ? 'search-query-error' : undefined}
              onInput={(event) => setQuery(event.currentTarget.value)}
            />
            {queryError && (
              <span class="field-error" id="search-query-error">
                {queryError}
              </span>
            )}
          </div>
        )}
        {inputs.traits && (
          <fieldset>
            <legend>Target Big Five profile</legend>
            <TraitInputs idPrefix="search-traits" value={traits} onChange={setTraits} errors={fieldErrors} />
          </fieldset>
        )}
        {facts.searchFlags.map((flag) => (
          <label class="flag" title={flag.description}>
            <input type="checkbox" checked={!!flags[flag.name]} onChange={(event) => setFlags({ ...flags, [flag.name]: event.currentTarget.checked })} /> {flag.name}
            {flag.description && <small> — {flag.description}</small>}
          </label>
        ))}
        <details>
          <summary>Filters</summary>
          <FilterPanel idPrefix="search" value={filter} onChange={setFilter} humorLevels={facts.humorLevels} />
        </details>
        <button type="submit" disabled={busy}>
          {busy ? 'Searching…' : 'Search'}
        </button>
      </form>
      {error !== undefined && <ProblemMessage error={error} />}
      {results && (
        <section aria-labelledby="results-heading">
          <h2 id="results-heading">
            Results <small>({results.items.length}, mode {results.mode}; score: {scoreMeaning(results.score_type)})</small>
          </h2>
          {results.items.length === 0 ? (
            <p>No persona matches. Personas appear in search a few seconds after they are written.</p>
          ) : (
            <ol class="results" data-testid="search-results">
              {results.items.map((hit) => (
                <li>
                  <a href={href(`/personas/${hit.id}`)}>{hit.name}</a> <span class="score" title={scoreMeaning(results.score_type)}>{formatScore(hit.score)}</span>
                  <span class="muted"> {hit.domain.join(', ')}</span> <TraitBars traits={hit.traits} />
                  {Object.entries(hit)
                    .filter(([key]) => facts.searchFlags.some((flag) => flags[flag.name] && key === flag.name))
                    .map(([key, value]) => (
                      <pre class="explain" aria-label={key}>
                        {JSON.stringify(value, null, 2)}
                      </pre>
                    ))}
                </li>
              ))}
            </ol>
          )}
          {results.next_offset !== null && (
            <button type="button" class="secondary" disabled={busy} onClick={() => void run(results.next_offset!)}>
              More results
            </button>
          )}
        </section>
      )}
    </section>
  );
}
