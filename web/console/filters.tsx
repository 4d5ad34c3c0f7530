/**
 * The API's search filter (domain, modes, humor_usage, emotional_style, trait ranges) as a form,
 * as the API's `filter` object, and as a predicate with the API's semantics for the browse list:
 * every given field must match, a list matches when any of its values does, matches are exact.
 */
import { TRAITS, type Persona, type Trait } from './api';

export interface FilterState {
  domain: string;
  modes: string;
  humor_usage: string[];
  emotional_style: string;
  traits: Record<Trait, { gte: string; lte: string }>;
}

export const emptyFilter = (): FilterState => ({
  domain: '',
  modes: '',
  humor_usage: [],
  emotional_style: '',
  traits: Object.fromEntries(TRAITS.map((trait) => [trait, { gte: '', lte: '' }])) as FilterState['traits'],
});

/** Comma-separated values, as in the similar endpoint's query string. */
const listOf = (text: string) => text.split(',').map((item) => item.trim()).filter((item) => item !== '');

export interface ApiFilter {
  domain?: string[];
  modes?: string[];
  humor_usage?: string[];
  emotional_style?: string[];
  traits?: Partial<Record<Trait, { gte?: number; lte?: number }>>;
}

export function toApiFilter(state: FilterState): ApiFilter | undefined {
  const filter: ApiFilter = {};
  if (listOf(state.domain).length) filter.domain = listOf(state.domain);
  if (listOf(state.modes).length) filter.modes = listOf(state.modes);
  if (state.humor_usage.length) filter.humor_usage = state.humor_usage;
  if (listOf(state.emotional_style).length) filter.emotional_style = listOf(state.emotional_style);
  const traits: NonNullable<ApiFilter['traits']> = {};
  for (const trait of TRAITS) {
    const { gte, lte } = state.traits[trait];
    const range: { gte?: number; lte?: number } = {};
    if (gte.trim() !== '') range.gte = Number(gte);
    if (lte.trim() !== '') range.lte = Number(lte);
    if (range.gte !== undefined || range.lte !== undefined) traits[trait] = range;
  }
  if (Object.keys(traits).length) filter.traits = traits;
  return Object.keys(filter).length ? filter : undefined;
}

/** Problems the API would report for this filter, by form field, so the list never filters by nonsense. */
export function filterErrors(state: FilterState): Record<string, string> {
  const errors: Record<string, string> = {};
  for (const trait of TRAITS) {
    for (const bound of ['gte', 'lte'] as const) {
      const text = state.traits[trait][bound].trim();
      if (text !== '' && !(Number(text) >= 0 && Number(text) <= 1)) errors[`${trait}.${bound}`] = 'must be a number between 0 and 1';
    }
    const { gte, lte } = state.traits[trait];
    if (gte.trim() !== '' && lte.trim() !== '' && Number(gte) > Number(lte)) errors[`${trait}.gte`] = 'min must not be greater than max';
  }
  return errors;
}

export function matchesFilter(persona: Persona, filter: ApiFilter | undefined): boolean {
  if (!filter) return true;
  const anyOf = (values: string[] | undefined, wanted: string[] | undefined) => !wanted || (values ?? []).some((value) => wanted.includes(value));
  if (!anyOf(persona.domain, filter.domain)) return false;
  if (!anyOf(persona.modes, filter.modes)) return false;
  if (filter.humor_usage && !(persona.humor_usage !== undefined && filter.humor_usage.includes(persona.humor_usage))) return false;
  if (filter.emotional_style && !(persona.emotional_style !== undefined && filter.emotional_style.includes(persona.emotional_style))) return false;
  for (const [trait, range] of Object.entries(filter.traits ?? {}) as Array<[Trait, { gte?: number; lte?: number }]>) {
    const score = persona.traits[trait];
    if (range.gte !== undefined && score < range.gte) return false;
    if (range.lte !== undefined && score > range.lte) return false;
  }
  return true;
}

export function FilterPanel(props: {
  idPrefix: string;
  value: FilterState;
  onChange: (next: FilterState) => void;
  humorLevels: string[];
  suggestions?: { domain: string[]; modes: string[]; emotional_style: string[] };
}) {
  const { value, onChange, idPrefix } = props;
  const errors = filterErrors(value);
  const id = (name: string) => `${idPrefix}-${name}`;
  const text = (field: 'domain' | 'modes' | 'emotional_style', label: string, hint: string) => (
    <div class="field">
      <label for={id(field)}>{label}</label>
      <input
        id={id(field)}
        type="text"
        value={value[field]}
        list={props.suggestions ? id(`${field}-options`) : undefined}
        aria-describedby={id(`${field}-hint`)}
        onInput={(event) => onChange({ ...value, [field]: event.currentTarget.value })}
      />
      <small id={id(`${field}-hint`)}>{hint}</small>
      {props.suggestions && (
        <datalist id={id(`${field}-options`)}>
          {props.suggestions[field].slice(0, 200).map((option) => (
            <option value={option} />
          ))}
        </datalist>
      )}
    </div>
  );
  const activeTraits = TRAITS.filter((trait) => value.traits[trait].gte || value.traits[trait].lte).length;
  return (
    <fieldset class="filters">
      <legend>Filters</legend>
      <div class="filter-grid">
        {text('domain', 'Domain', 'Exact values, comma-separated; any of them matches.')}
        {text('modes', 'Modes', 'Exact values, comma-separated.')}
        {text('emotional_style', 'Emotional style', 'Exact values, comma-separated.')}
        <fieldset class="field checkboxes">
          <legend>Humor</legend>
          {props.humorLevels.map((level) => (
            <label>
              <input
                type="checkbox"
                checked={value.humor_usage.includes(level)}
                onChange={(event) =>
                  onChange({
                    ...value,
                    humor_usage: event.currentTarget.checked ? [...value.humor_usage, level] : value.humor_usage.filter((item) => item !== level),
                  })
                }
              />{' '}
              {level}
            </label>
          ))}
        </fieldset>
      </div>
      <details open={activeTraits > 0}>
        <summary>Trait ranges{activeTraits ? ` (${activeTraits} set)` : ''}</summary>
        <div class="trait-ranges">
          {TRAITS.map((trait) => (
            <div class="trait-range" role="group" aria-labelledby={id(`${trait}-label`)}>
              <span id={id(`${trait}-label`)} class="trait-name">
                {trait}
              </span>
              {(['gte', 'lte'] as const).map((bound) => {
                const error = errors[`${trait}.${bound}`];
                return (
                  <span class="bound">
                    <label for={id(`${trait}-${bound}`)}>{bound === 'gte' ? 'min' : 'max'}</label>
                    <input
                      id={id(`${trait}-${bound}`)}
                      type="number"
                      min="0"
                      max="1"
                      step="0.05"
                      inputMode="decimal"
                      value={value.traits[trait][bound]}
                      aria-invalid={error ? 'true' : undefined}
                      aria-describedby={error ? id(`${trait}-${bound}-error`) : undefined}
                      onInput={(event) =>
                        onChange({ ...value, traits: { ...value.traits, [trait]: { ...value.traits[trait], [bound]: event.currentTarget.value } } })
                      }
                    />
                    {error && (
                      <span class="field-error" id={id(`${trait}-${bound}-error`)}>
                        {error}
                      </span>
                    )}
                  </span>
                );
              })}
            </div>
          ))}
        </div>
      </details>
      <button type="button" class="secondary" onClick={() => onChange(emptyFilter())}>
        Clear filters
      </button>
    </fieldset>
  );
}
