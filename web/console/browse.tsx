/** Browse: every persona in a sortable, filterable, paged table. */
import { useMemo, useState } from 'preact/hooks';
import { TRAITS, type Persona } from './api';
import { FilterPanel, emptyFilter, filterErrors, matchesFilter, toApiFilter, type FilterState } from './filters';
import { usePersonaStore, reloadAll } from './store';
import { PageTitle, ProblemMessage, formatDate, href } from './ui';

type SortKey = 'name' | 'domain' | 'modes' | 'humor_usage' | 'emotional_style' | 'updated_at' | (typeof TRAITS)[number];

const PAGE_SIZE = 25;
/** Natural order for text ("Ada 9" before "Ada 10"), case-insensitive. */
export const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });
const HUMOR_ORDER = ['none', 'low', 'medium', 'high'];

const sortValue = (persona: Persona, key: SortKey): string | number => {
  if ((TRAITS as readonly string[]).includes(key)) return persona.traits[key as (typeof TRAITS)[number]];
  if (key === 'domain' || key === 'modes') return persona[key][0] ?? '';
  if (key === 'humor_usage') return persona.humor_usage ? HUMOR_ORDER.indexOf(persona.humor_usage) : -1;
  return persona[key as 'name' | 'emotional_style' | 'updated_at'] ?? '';
};

/** Distinct values of a list field, most frequent first, for the filter suggestions. */
function distinct(personas: Persona[], pick: (persona: Persona) => string[]): string[] {
  const counts = new Map<string, number>();
  for (const persona of personas) for (const value of pick(persona)) counts.set(value, (counts.get(value) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([value]) => value);
}

export function BrowseView(props: { humorLevels: string[] }) {
  const store = usePersonaStore();
  const [filter, setFilter] = useState<FilterState>(emptyFilter);
  const [sort, setSort] = useState<{ key: SortKey; descending: boolean }>({ key: 'name', descending: false });
  const [page, setPage] = useState(0);

  const suggestions = useMemo(
    () => ({
      domain: distinct(store.personas, (persona) => persona.domain),
      modes: distinct(store.personas, (persona) => persona.modes),
      emotional_style: distinct(store.personas, (persona) => (persona.emotional_style ? [persona.emotional_style] : [])),
    }),
    // Suggestions only need refreshing when loading settles.
    [store.loading, store.personas.length === 0],
  );

  const apiFilter = Object.keys(filterErrors(filter)).length ? undefined : toApiFilter(filter);
  const rows = useMemo(() => {
    const matching = store.personas.filter((persona) => matchesFilter(persona, apiFilter));
    const direction = sort.descending ? -1 : 1;
    return matching.sort((a, b) => {
      const x = sortValue(a, sort.key);
      const y = sortValue(b, sort.key);
      const order = typeof x === 'string' && typeof y === 'string' ? collator.compare(x, y) : x < y ? -1 : x > y ? 1 : 0;
      return (order || collator.compare(a.name, b.name)) * direction;
    });
  }, [store.revision, JSON.stringify(apiFilter), sort.key, sort.descending]);

  const pageCount = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
  const current = Math.min(page, pageCount - 1);
  const visible = rows.slice(current * PAGE_SIZE, (current + 1) * PAGE_SIZE);

  const header = (key: SortKey, label: string, className = '') => {
    const active = sort.key === key;
    return (
      <th scope="col" class={className} aria-sort={active ? (sort.descending ? 'descending' : 'ascending') : 'none'}>
        <button
          type="button"
          class="sort"
          onClick={() => {
            setSort({ key, descending: active ? !sort.descending : (TRAITS as readonly string[]).includes(key) || key === 'updated_at' });
            setPage(0);
          }}
        >
          {label}
          <span aria-hidden="true">{active ? (sort.descending ? ' ▼' : ' ▲') : ' ↕'}</span>
        </button>
      </th>
    );
  };

  return (
    <section>
      <PageTitle>Personas</PageTitle>
      <FilterPanel
        idPrefix="browse"
        value={filter}
        onChange={(next) => {
          setFilter(next);
          setPage(0);
        }}
        humorLevels={props.humorLevels}
        suggestions={suggestions}
      />
      <p class="status" role="status" data-testid="browse-status">
        {rows.length.toLocaleString()} of {store.personas.length.toLocaleString()} personas
        {store.loading ? ' (loading more…)' : ''}
        {apiFilter ? ' match the filters' : ''}.{' '}
        {!store.loading && (
          <button type="button" class="link" onClick={reloadAll}>
            Reload
          </button>
        )}
      </p>
      {store.error && <ProblemMessage error={store.error} retry={reloadAll} />}
      <div class="table-scroll" tabIndex={0} aria-label="Persona table (scrolls sideways on small screens)">
        <table class="personas">
          <thead>
            <tr>
              {header('name', 'Name')}
              {header('domain', 'Domain')}
              {header('modes', 'Modes', 'wide-only')}
              {header('humor_usage', 'Humor')}
              {header('emotional_style', 'Emotional style', 'wide-only')}
              {TRAITS.map((trait) => header(trait, trait.slice(0, 1).toUpperCase(), 'trait-col'))}
              {header('updated_at', 'Updated', 'wide-only')}
            </tr>
          </thead>
          <tbody>
            {visible.map((persona) => (
              <tr>
                <td>
                  <a href={href(`/personas/${persona.id}`)}>{persona.name}</a>
                </td>
                <td>{persona.domain.join(', ')}</td>
                <td class="wide-only">{persona.modes.join(', ')}</td>
                <td>{persona.humor_usage ?? '—'}</td>
                <td class="wide-only">{persona.emotional_style ?? '—'}</td>
                {TRAITS.map((trait) => (
                  <td class="trait-col num" title={trait}>
                    {persona.traits[trait].toFixed(2)}
                  </td>
                ))}
                <td class="wide-only">{formatDate(persona.updated_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p class="trait-key">O C E A N: openness, conscientiousness, extraversion, agreeableness, neuroticism (0 to 1).</p>
      <nav class="pager" aria-label="Pages">
        <button type="button" disabled={current === 0} onClick={() => setPage(current - 1)}>
          Previous
        </button>
        <span>
          Page {current + 1} of {pageCount}
        </span>
        <button type="button" disabled={current >= pageCount - 1} onClick={() => setPage(current + 1)}>
          Next
        </button>
      </nav>
    </section>
  );
}
