/**
 * Create and edit. The API validates; its problem+json field errors are shown beside their fields.
 * Edits send If-Match with the version the form started from; a 412 shows what changed meanwhile
 * and lets the user reapply their own changes on the latest version.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, client, etagOf, newIdempotencyKey, TRAITS, type Persona, type PersonaInput, type Traits } from './api';
import { rememberPersona } from './store';
import { NEUTRAL_TRAITS, PageTitle, ProblemMessage, TraitInputs, href, navigate } from './ui';

interface FormState {
  name: string;
  domain: string;
  modes: string;
  humor_usage: string;
  emotional_style: string;
  beliefs: string;
  signature_phrases: string;
  traits: Traits;
}

const FIELD_LABELS: Record<keyof FormState, string> = {
  name: 'Name',
  domain: 'Domain',
  modes: 'Modes',
  humor_usage: 'Humor',
  emotional_style: 'Emotional style',
  beliefs: 'Beliefs',
  signature_phrases: 'Signature phrases',
  traits: 'Traits',
};

const emptyForm = (): FormState => ({ name: '', domain: '', modes: '', humor_usage: '', emotional_style: '', beliefs: '', signature_phrases: '', traits: NEUTRAL_TRAITS() });

const formFrom = (persona: Persona): FormState => ({
  name: persona.name,
  domain: persona.domain.join('\n'),
  modes: persona.modes.join('\n'),
  humor_usage: persona.humor_usage ?? '',
  emotional_style: persona.emotional_style ?? '',
  beliefs: persona.beliefs.join('\n'),
  signature_phrases: persona.signature_phrases.join('\n'),
  traits: { ...persona.traits },
});

/** The form as the API's PersonaInput: one list item per line; empty optional fields are left out. */
function inputFrom(form: FormState): PersonaInput {
  const lines = (text: string) => text.split('\n').map((line) => line.trim()).filter((line) => line !== '');
  return {
    name: form.name,
    domain: lines(form.domain),
    modes: lines(form.modes),
    // The picker offers the API document's levels; the API names any other.
    ...(form.humor_usage ? { humor_usage: form.humor_usage as PersonaInput['humor_usage'] } : {}),
    ...(form.emotional_style.trim() ? { emotional_style: form.emotional_style } : {}),
    beliefs: lines(form.beliefs),
    signature_phrases: lines(form.signature_phrases),
    // NaN (an emptied number box) is sent as null, so the API names the trait.
    traits: Object.fromEntries(TRAITS.map((trait) => [trait, Number.isFinite(form.traits[trait]) ? form.traits[trait] : null])) as unknown as Traits,
  };
}

/** `#/domain/2` → `domain` ("item 3: ..."), `#/traits/openness` → `traits.openness`. */
export function errorsByField(errors: Array<{ pointer: string; detail: string }>): { fields: Record<string, string>; other: string[] } {
  const fields: Record<string, string> = {};
  const other: string[] = [];
  for (const { pointer, detail } of errors) {
    const parts = pointer.replace(/^#\/?/, '').split('/').filter(Boolean);
    const [field, second] = parts;
    let key: string | undefined;
    let text = detail;
    if (field === 'traits' && second && (TRAITS as readonly string[]).includes(second)) key = `traits.${second}`;
    else if (field === 'traits') key = 'traits';
    else if (field && field in FIELD_LABELS) {
      key = field;
      if (second !== undefined && /^\d+$/.test(second)) text = `line ${Number(second) + 1}: ${detail}`;
    }
    if (key) fields[key] = fields[key] ? `${fields[key]}; ${text}` : text;
    else other.push(`${pointer}: ${detail}`);
  }
  return { fields, other };
}

const sameValue = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

interface Conflict {
  current: Persona;
  etag: string;
  /** Fields someone else changed since the form's version. */
  theirs: Array<keyof FormState>;
  /** Fields this user changed. */
  mine: Array<keyof FormState>;
}

export function EditorView(props: { id?: string; humorLevels: string[] }) {
  const editing = props.id !== undefined;
  const [base, setBase] = useState<{ persona: Persona; etag: string } | undefined>();
  const [form, setForm] = useState<FormState>(emptyForm);
  const [loadError, setLoadError] = useState<unknown>();
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({});
  const [otherErrors, setOtherErrors] = useState<string[]>([]);
  const [error, setError] = useState<unknown>();
  const [conflict, setConflict] = useState<Conflict | undefined>();
  const [busy, setBusy] = useState(false);
  const idempotencyKey = useRef(newIdempotencyKey());
  const summary = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!props.id) return;
    client.getPersona(props.id).then(
      (data) => {
        setBase({ persona: data, etag: etagOf(data) });
        setForm(formFrom(data));
      },
      setLoadError,
    );
  }, [props.id]);

  useEffect(() => {
    if (Object.keys(fieldErrors).length || otherErrors.length || conflict) summary.current?.focus();
  }, [fieldErrors, otherErrors, conflict]);

  async function save(event: Event) {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    setFieldErrors({});
    setOtherErrors([]);
    try {
      const body = inputFrom(form);
      const data = editing
        ? await client.replacePersona(props.id!, body, { ifMatch: base!.etag })
        : await client.createPersona(body, { idempotencyKey: idempotencyKey.current });
      rememberPersona(data);
      navigate(`/personas/${data.id}?saved=${data.version}`);
    } catch (caught) {
      if (caught instanceof ApiError && caught.errors.length) {
        const { fields, other } = errorsByField(caught.errors);
        setFieldErrors(fields);
        setOtherErrors(other);
        // A corrected body is a new request: a new key, so the server does not replay the 400.
        idempotencyKey.current = newIdempotencyKey();
      } else if (caught instanceof ApiError && caught.status === 412 && base) {
        await showConflict();
      } else {
        setError(caught);
      }
    } finally {
      setBusy(false);
    }
  }

  async function showConflict() {
    const current = await client.getPersona(props.id!);
    const keys = Object.keys(FIELD_LABELS) as Array<keyof FormState>;
    const before = formFrom(base!.persona);
    const latest = formFrom(current);
    setConflict({
      current,
      etag: etagOf(current),
      theirs: keys.filter((key) => !sameValue(before[key], latest[key])),
      mine: keys.filter((key) => !sameValue(before[key], form[key])),
    });
  }

  function reapply() {
    const latest = formFrom(conflict!.current);
    const merged = { ...latest };
    for (const key of conflict!.mine) (merged as Record<string, unknown>)[key] = form[key];
    setBase({ persona: conflict!.current, etag: conflict!.etag });
    setForm(merged);
    setConflict(undefined);
  }

  function discardMine() {
    setBase({ persona: conflict!.current, etag: conflict!.etag });
    setForm(formFrom(conflict!.current));
    setConflict(undefined);
  }

  if (loadError) return <section><PageTitle>Edit persona</PageTitle><ProblemMessage error={loadError} /></section>;
  if (editing && !base) return <p role="status">Loading…</p>;

  const describe = (key: keyof FormState, value: FormState) => (key === 'traits' ? TRAITS.map((trait) => `${trait.slice(0, 1).toUpperCase()} ${value.traits[trait]}`).join(' ') : String(value[key]).replace(/\n/g, '; ') || '—');

  const textField = (key: Exclude<keyof FormState, 'traits' | 'humor_usage'>, options: { multiline?: boolean; hint?: string; required?: boolean } = {}) => {
    const id = `field-${key}`;
    const fieldError = fieldErrors[key];
    const described = [options.hint ? `${id}-hint` : '', fieldError ? `${id}-error` : ''].filter(Boolean).join(' ') || undefined;
    const common = {
      id,
      name: key,
      value: form[key],
      'aria-invalid': fieldError ? ('true' as const) : undefined,
      'aria-describedby': described,
      'aria-required': options.required ? ('true' as const) : undefined,
    };
    return (
      <div class={`field${fieldError ? ' invalid' : ''}`}>
        <label for={id}>
          {FIELD_LABELS[key]}
          {options.required ? ' (required)' : ''}
        </label>
        {options.multiline ? (
          <textarea {...common} rows={3} onInput={(event) => setForm({ ...form, [key]: event.currentTarget.value })} />
        ) : (
          <input {...common} type="text" onInput={(event) => setForm({ ...form, [key]: event.currentTarget.value })} />
        )}
        {options.hint && (
          <small id={`${id}-hint`} class="hint">
            {options.hint}
          </small>
        )}
        {fieldError && (
          <span class="field-error" id={`${id}-error`}>
            {fieldError}
          </span>
        )}
      </div>
    );
  };

  const errorCount = Object.keys(fieldErrors).length + otherErrors.length;
  return (
    <section>
      <PageTitle>{editing ? `Edit ${base!.persona.name}` : 'New persona'}</PageTitle>
      {editing && (
        <p class="hint">
          Editing version {base!.persona.version}. Saving replaces the persona if nobody changed it since (If-Match: {base!.etag}).
        </p>
      )}
      <div ref={summary} tabIndex={-1} class="summary-anchor">
        {errorCount > 0 && (
          <div class="problem" role="alert" data-testid="error-summary">
            <strong>
              The API rejected {errorCount} field{errorCount > 1 ? 's' : ''}:
            </strong>
            <ul>
              {Object.entries(fieldErrors).map(([key, detail]) => (
                <li>
                  <button
                    type="button"
                    class="link"
                    onClick={() => document.getElementById(key.startsWith('traits.') ? `edit-traits-${key.slice(7)}` : `field-${key}`)?.focus()}
                  >
                    {key.startsWith('traits.') ? key.slice(7) : FIELD_LABELS[key as keyof FormState] ?? key}
                  </button>
                  : {detail}
                </li>
              ))}
              {otherErrors.map((text) => (
                <li>{text}</li>
              ))}
            </ul>
          </div>
        )}
        {conflict && (
          <div class="conflict" role="alert" data-testid="conflict">
            <h2>Someone saved version {conflict.current.version} while you were editing version {base!.persona.version}</h2>
            {conflict.theirs.length ? (
              <table>
                <thead>
                  <tr>
                    <th scope="col">Field</th>
                    <th scope="col">Version {base!.persona.version}</th>
                    <th scope="col">Now (version {conflict.current.version})</th>
                    <th scope="col">Yours</th>
                  </tr>
                </thead>
                <tbody>
                  {conflict.theirs.map((key) => (
                    <tr>
                      <th scope="row">{FIELD_LABELS[key]}</th>
                      <td>{describe(key, formFrom(base!.persona))}</td>
                      <td>{describe(key, formFrom(conflict.current))}</td>
                      <td>{conflict.mine.includes(key) ? describe(key, form) : <span class="muted">unchanged</span>}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            ) : (
              <p>Its fields are the same as the version you started from.</p>
            )}
            <p>
              Your changes: {conflict.mine.length ? conflict.mine.map((key) => FIELD_LABELS[key]).join(', ') : 'none'}.
              {conflict.mine.some((key) => conflict.theirs.includes(key)) && ' Reapplying overwrites their value of the fields you both changed.'}
            </p>
            <div class="actions">
              <button type="button" onClick={reapply}>
                Reapply my changes to version {conflict.current.version}
              </button>
              <button type="button" class="secondary" onClick={discardMine}>
                Discard my changes
              </button>
            </div>
          </div>
        )}
      </div>
      {error !== undefined && <ProblemMessage error={error} />}
      <form class="editor" onSubmit={save} noValidate>
        {textField('name', { required: true })}
        {textField('domain', { multiline: true, required: true, hint: 'One per line; at least one.' })}
        {textField('modes', { multiline: true, hint: 'Conversational roles, one per line.' })}
        <div class={`field${fieldErrors.humor_usage ? ' invalid' : ''}`}>
          <label for="field-humor_usage">Humor</label>
          <select
            id="field-humor_usage"
            value={form.humor_usage}
            aria-invalid={fieldErrors.humor_usage ? 'true' : undefined}
            aria-describedby={fieldErrors.humor_usage ? 'field-humor_usage-error' : undefined}
            onChange={(event) => setForm({ ...form, humor_usage: event.currentTarget.value })}
          >
            <option value="">not set</option>
            {props.humorLevels.map((level) => (
              <option value={level}>{level}</option>
            ))}
          </select>
          {fieldErrors.humor_usage && (
            <span class="field-error" id="field-humor_usage-error">
              {fieldErrors.humor_usage}
            </span>
          )}
        </div>
        {textField('emotional_style')}
        {textField('beliefs', { multiline: true, hint: 'One per line.' })}
        {textField('signature_phrases', { multiline: true, hint: 'One per line.' })}
        <fieldset class={fieldErrors.traits ? 'invalid' : ''}>
          <legend>Big Five traits (0 to 1)</legend>
          {fieldErrors.traits && <span class="field-error">{fieldErrors.traits}</span>}
          <TraitInputs idPrefix="edit-traits" value={form.traits} onChange={(traits) => setForm({ ...form, traits })} errors={fieldErrors} />
        </fieldset>
        <div class="actions">
          <button type="submit" disabled={busy || !!conflict}>
            {busy ? 'Saving…' : editing ? 'Save' : 'Create'}
          </button>
          <a class="button secondary" href={editing ? href(`/personas/${props.id}`) : href('/')}>
            Cancel
          </a>
        </div>
      </form>
    </section>
  );
}
