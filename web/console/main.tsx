/**
 * The persona console: a single page served at GET /console that calls the public API of its own
 * origin. Views are chosen by the URL fragment (#/, #/search, #/map, #/personas/<id>, ...), so
 * every view has a link, and the browser's back button works.
 */
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { apiFacts, type ApiFacts } from './apiDocument';
import { BrowseView } from './browse';
import { EditorView } from './editor';
import { ImportView } from './import';
import { MapView } from './map';
import { PersonaView } from './persona';
import { SearchView } from './search';
import { startLoading } from './store';
import { bearerToken, setBearerToken } from './token';
import { ProblemMessage, href } from './ui';
import './console.css';

function useHashPath(): { path: string; params: URLSearchParams } {
  const read = () => {
    const [path, query] = (window.location.hash.replace(/^#/, '') || '/').split('?');
    return { path: path || '/', params: new URLSearchParams(query ?? '') };
  };
  const [location, setLocation] = useState(read);
  useEffect(() => {
    const onChange = () => setLocation(read());
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return location;
}

function TokenDialog() {
  const dialog = useRef<HTMLDialogElement>(null);
  const [token, setToken] = useState(bearerToken);
  const [saved, setSaved] = useState(bearerToken() !== '');
  return (
    <>
      <button type="button" class="link nav-button" onClick={() => dialog.current?.showModal()}>
        API token{saved ? ' ✓' : ''}
      </button>
      <dialog ref={dialog} aria-labelledby="token-title">
        <form
          method="dialog"
          onSubmit={() => {
            setBearerToken(token);
            setSaved(token.trim() !== '');
            window.location.reload();
          }}
        >
          <h2 id="token-title">API token</h2>
          <p>
            Only for a stage deployed with <code>auth=jwt</code>: paste a token from your identity provider. It is kept in this tab only
            (sessionStorage) and sent as <code>Authorization: Bearer …</code> to this API. Leave empty for <code>auth=none</code>. Locally with{' '}
            <code>AUTH=jwt npm start</code>: <code>npx personas token --scope personas:read,personas:write</code>.
          </p>
          <div class="field">
            <label for="token-input">Bearer token</label>
            <textarea id="token-input" rows={4} value={token} onInput={(event) => setToken(event.currentTarget.value)} />
          </div>
          <div class="actions">
            <button type="submit">Save and reload</button>
            <button type="button" class="secondary" onClick={() => dialog.current?.close()}>
              Cancel
            </button>
          </div>
        </form>
      </dialog>
    </>
  );
}

const NAV = [
  { path: '/', label: 'Browse' },
  { path: '/search', label: 'Search' },
  { path: '/map', label: 'Map' },
  { path: '/new', label: 'New persona' },
  { path: '/import', label: 'Import' },
];

function App() {
  const { path, params } = useHashPath();
  const [facts, setFacts] = useState<ApiFacts | undefined>();
  const [factsError, setFactsError] = useState<unknown>();
  useEffect(() => {
    apiFacts().then(setFacts, setFactsError);
  }, []);

  let view;
  const persona = /^\/personas\/([^/]+)(\/edit)?$/.exec(path);
  if (factsError) view = <ProblemMessage error={factsError} retry={() => window.location.reload()} />;
  else if (!facts) view = <p role="status">Loading…</p>;
  else if (path === '/') view = <BrowseView humorLevels={facts.humorLevels} />;
  else if (path === '/search') view = <SearchView facts={facts} />;
  else if (path === '/map') view = <MapView />;
  else if (path === '/new') view = <EditorView humorLevels={facts.humorLevels} />;
  else if (path === '/import') view = <ImportView />;
  else if (persona?.[2]) view = <EditorView key={`edit-${persona[1]}`} id={decodeURIComponent(persona[1]!)} humorLevels={facts.humorLevels} />;
  else if (persona) {
    const saved = params.get('saved');
    view = <PersonaView key={persona[1]} id={decodeURIComponent(persona[1]!)} {...(saved ? { notice: `Saved version ${saved}.` } : {})} />;
  } else view = <p>No such page. <a href={href('/')}>Browse personas</a>.</p>;

  const deleted = path === '/' ? params.get('deleted') : null;
  const section = persona ? '' : path;
  return (
    <>
      <a class="skip-link" href="#main" onClick={(event) => {
        event.preventDefault();
        document.getElementById('main')?.focus();
      }}>
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href={href('/')}>
          persona-db
        </a>
        <nav aria-label="Console">
          <ul>
            {NAV.map((item) => (
              <li>
                <a href={href(item.path)} aria-current={section === item.path ? 'page' : undefined}>
                  {item.label}
                </a>
              </li>
            ))}
            <li>
              <a href="docs">API docs</a>
            </li>
            <li>
              <TokenDialog />
            </li>
          </ul>
        </nav>
      </header>
      <main id="main" tabIndex={-1}>
        {deleted && (
          <p class="notice" role="status">
            Deleted {deleted}.
          </p>
        )}
        {view}
      </main>
    </>
  );
}

// The first requests leave at once, side by side: the API document (search modes, limits) and,
// for the views that list every persona, the first page of personas.
// Handled here too: a 401 can answer before App's effect attaches its handler, and an unobserved
// rejection would surface as an uncaught page error (the effect still receives it).
apiFacts().catch(() => undefined);
if (['', '#', '#/', '#/map'].includes(window.location.hash.split('?')[0]!)) startLoading();
render(<App />, document.getElementById('app')!);
