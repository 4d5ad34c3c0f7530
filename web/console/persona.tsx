/** A persona's page: every field, its radar (optionally overlaid), similar personas, versions, delete. */
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, client, TRAITS, type Persona, type SearchHit, type SimilarResults, type SearchRequest } from './api';
import { Radar, type RadarSeries } from './radar';
import { forgetPersona } from './store';
import { PageTitle, ProblemMessage, formatDate, formatScore, href, navigate, scoreMeaning } from './ui';

const SIMILAR_MODES = [
  { mode: 'semantic', label: 'By text' },
  { mode: 'personality', label: 'By personality' },
  { mode: 'blend', label: 'Blended' },
] as const;

type SimilarState = { status: 'loading' } | { status: 'done'; results: SimilarResults } | { status: 'not-indexed'; attempt: number } | { status: 'error'; error: unknown };

/** How long the page keeps asking for a persona the index has not caught up with. */
const NOT_INDEXED_ATTEMPTS = 15;

function useSimilar(id: string, mode: string, version: number | undefined): [SimilarState, () => void] {
  const [state, setState] = useState<SimilarState>({ status: 'loading' });
  const [reload, setReload] = useState(0);
  useEffect(() => {
    if (version === undefined) return;
    let cancelled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const attempt = async (count: number) => {
      try {
        const data = await client.similarPersonas(id, { mode: mode as SearchRequest['mode'], limit: 5 });
        if (!cancelled) setState({ status: 'done', results: data });
      } catch (error) {
        if (cancelled) return;
        if (error instanceof ApiError && error.slug === 'persona-not-indexed' && count < NOT_INDEXED_ATTEMPTS) {
          setState({ status: 'not-indexed', attempt: count });
          const seconds = Number(error.headers.get('retry-after') ?? '1') || 1;
          timer = setTimeout(() => void attempt(count + 1), seconds * 1000);
        } else setState({ status: 'error', error });
      }
    };
    setState({ status: 'loading' });
    void attempt(1);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [id, mode, version, reload]);
  return [state, () => setReload((count) => count + 1)];
}

export function PersonaView(props: { id: string; notice?: string }) {
  const [persona, setPersona] = useState<Persona | undefined>();
  const [error, setError] = useState<unknown>();
  const [compareId, setCompareId] = useState('');
  const dialog = useRef<HTMLDialogElement>(null);
  const [deleteError, setDeleteError] = useState<unknown>();

  useEffect(() => {
    setPersona(undefined);
    setError(undefined);
    setCompareId('');
    client.getPersona(props.id).then(
      (data) => setPersona(data),
      (caught) => setError(caught),
    );
  }, [props.id]);

  const similar = SIMILAR_MODES.map(({ mode }) => useSimilar(props.id, mode, persona?.version));

  if (error) return <section><PageTitle>Persona</PageTitle><ProblemMessage error={error} /></section>;
  if (!persona) return <p role="status">Loading…</p>;

  const hits = new Map<string, SearchHit>();
  for (const [state] of similar) if (state.status === 'done') for (const hit of state.results.items) hits.set(hit.id, hit);
  const compared = hits.get(compareId);
  const series: RadarSeries[] = [{ label: persona.name, traits: persona.traits }, ...(compared ? [{ label: compared.name, traits: compared.traits }] : [])];

  const indexedVersions = similar.flatMap(([state]) => (state.status === 'done' && typeof state.results.indexed_version === 'number' ? [state.results.indexed_version] : []));
  const indexedVersion = indexedVersions.length ? Math.max(...indexedVersions) : undefined;
  const notIndexed = similar.some(([state]) => state.status === 'not-indexed');

  async function remove() {
    setDeleteError(undefined);
    try {
      await client.deletePersona(persona!.id, { ifMatch: persona! });
      dialog.current?.close();
      forgetPersona(persona!.id);
      navigate(`/?deleted=${encodeURIComponent(persona!.name)}`);
    } catch (caught) {
      setDeleteError(caught);
    }
  }

  const list = (label: string, values: string[]) => (
    <>
      <dt>{label}</dt>
      <dd>{values.length ? <ul class="inline-list">{values.map((value) => <li>{value}</li>)}</ul> : <span class="muted">none</span>}</dd>
    </>
  );

  return (
    <section class="persona-page">
      {props.notice && (
        <p class="notice" role="status">
          {props.notice}
        </p>
      )}
      <PageTitle>{persona.name}</PageTitle>
      <div class="actions">
        <a class="button" href={href(`/personas/${persona.id}/edit`)}>
          Edit
        </a>
        <button type="button" class="danger" onClick={() => dialog.current?.showModal()}>
          Delete…
        </button>
      </div>
      <div class="persona-grid">
        <div>
          <dl class="fields">
            {list('Domain', persona.domain)}
            {list('Modes', persona.modes)}
            <dt>Humor</dt>
            <dd>{persona.humor_usage ?? <span class="muted">not set</span>}</dd>
            <dt>Emotional style</dt>
            <dd>{persona.emotional_style ?? <span class="muted">not set</span>}</dd>
            {list('Beliefs', persona.beliefs)}
            {list('Signature phrases', persona.signature_phrases)}
            <dt>Traits</dt>
            <dd>
              <table class="traits-table">
                <tbody>
                  {TRAITS.map((trait) => (
                    <tr>
                      <th scope="row">{trait}</th>
                      <td class="num">{persona.traits[trait].toFixed(2)}</td>
                      {compared && <td class="num compared">{compared.traits[trait].toFixed(2)}</td>}
                    </tr>
                  ))}
                </tbody>
              </table>
            </dd>
            <dt>Id</dt>
            <dd>
              <code>{persona.id}</code>
            </dd>
            <dt>Created</dt>
            <dd>{formatDate(persona.created_at)}</dd>
            <dt>Updated</dt>
            <dd>{formatDate(persona.updated_at)}</dd>
            <dt>Version</dt>
            <dd data-testid="versions">
              table v{persona.version}
              {' · '}
              {indexedVersion !== undefined ? (
                indexedVersion >= persona.version ? (
                  <span class="ok">index v{indexedVersion}: up to date</span>
                ) : (
                  <span class="warn">index v{indexedVersion}: catching up</span>
                )
              ) : notIndexed ? (
                <span class="warn">not in the index yet (retrying)</span>
              ) : (
                <span class="muted">index: checking…</span>
              )}
            </dd>
          </dl>
        </div>
        <div>
          <Radar series={series} />
          <div class="field">
            <label for="compare">Overlay another persona</label>
            <select id="compare" value={compareId} onChange={(event) => setCompareId(event.currentTarget.value)}>
              <option value="">none</option>
              {[...hits.values()].map((hit) => (
                <option value={hit.id}>{hit.name}</option>
              ))}
            </select>
          </div>
        </div>
      </div>
      <h2>Similar personas</h2>
      <div class="similar-grid" data-testid="similar">
        {SIMILAR_MODES.map(({ mode, label }, index) => {
          const [state, retry] = similar[index]!;
          return (
            <section aria-labelledby={`similar-${mode}`}>
              <h3 id={`similar-${mode}`}>
                {label} <small>({mode})</small>
              </h3>
              {state.status === 'loading' && <p role="status">Loading…</p>}
              {state.status === 'not-indexed' && <p role="status">Not indexed yet; retrying (attempt {state.attempt})…</p>}
              {state.status === 'error' && <ProblemMessage error={state.error} retry={retry} />}
              {state.status === 'done' && (
                <>
                  <p class="hint">Score: {scoreMeaning(state.results.score_type)}</p>
                  {state.results.items.length === 0 ? (
                    <p>No similar persona yet.</p>
                  ) : (
                    <ol class="results">
                      {state.results.items.map((hit) => (
                        <li>
                          <a href={href(`/personas/${hit.id}`)}>{hit.name}</a> <span class="score">{formatScore(hit.score)}</span>{' '}
                          <button type="button" class="link" aria-pressed={compareId === hit.id} onClick={() => setCompareId(compareId === hit.id ? '' : hit.id)}>
                            {compareId === hit.id ? 'hide overlay' : 'overlay'}
                          </button>
                        </li>
                      ))}
                    </ol>
                  )}
                </>
              )}
            </section>
          );
        })}
      </div>
      <dialog ref={dialog} aria-labelledby="delete-title">
        <h2 id="delete-title">Delete {persona.name}?</h2>
        <p>
          This deletes version {persona.version} from the table; it leaves search within seconds. If someone changed it since you opened this page,
          nothing is deleted.
        </p>
        {deleteError !== undefined && <ProblemMessage error={deleteError} />}
        <div class="actions">
          <button type="button" class="danger" onClick={() => void remove()}>
            Delete
          </button>
          <button type="button" class="secondary" autofocus onClick={() => dialog.current?.close()}>
            Cancel
          </button>
        </div>
      </dialog>
    </section>
  );
}
