/**
 * Every persona, for browsing (filters and sorting in the page) and the map: the first page is
 * shown as soon as it arrives and the rest load behind it, page after page of GET /personas.
 * Writes made in this console update the store at once.
 */
import { useEffect, useState } from 'preact/hooks';
import { client, type Persona } from './api';

export interface StoreState {
  personas: Persona[];
  /** True while more pages are coming. */
  loading: boolean;
  /** A failed page: the list stops there and can resume. */
  error: unknown;
  /** Increments on every change, for memoising derived views. */
  revision: number;
}

const PAGE_SIZE = 100;

let state: StoreState = { personas: [], loading: false, error: undefined, revision: 0 };
let cursor: string | null | undefined;
let started = false;
const listeners = new Set<() => void>();

let notifyTimer: ReturnType<typeof setTimeout> | undefined;
let lastNotified = 0;
/** While pages stream in, views re-render at most every 250 ms (10k personas are 100 pages). */
const NOTIFY_INTERVAL_MS = 250;

function notify(): void {
  clearTimeout(notifyTimer);
  notifyTimer = undefined;
  lastNotified = performance.now();
  for (const listener of listeners) listener();
}

function update(next: Partial<StoreState>, options: { throttle?: boolean } = {}): void {
  state = { ...state, ...next, revision: state.revision + 1 };
  const wait = lastNotified + NOTIFY_INTERVAL_MS - performance.now();
  if (!options.throttle || wait <= 0) notify();
  else notifyTimer ??= setTimeout(notify, wait);
}

async function loadRemaining(): Promise<void> {
  update({ loading: true, error: undefined });
  const byId = new Map(state.personas.map((persona) => [persona.id, persona]));
  try {
    do {
      const data = await client.listPersonas({ limit: PAGE_SIZE, ...(cursor ? { cursor } : {}) });
      for (const persona of data.items) if (!byId.has(persona.id)) byId.set(persona.id, persona);
      cursor = data.next_cursor;
      update({ personas: [...byId.values()] }, { throttle: state.personas.length > 0 });
    } while (cursor);
    update({ loading: false });
  } catch (error) {
    update({ loading: false, error });
  }
}

export function startLoading(): void {
  if (started && !state.error) return;
  started = true;
  void loadRemaining();
}

/** Reloads everything (after an import, or on request). */
export function reloadAll(): void {
  cursor = undefined;
  started = true;
  state = { ...state, personas: [] };
  void loadRemaining();
}

export function rememberPersona(persona: Persona): void {
  const index = state.personas.findIndex((existing) => existing.id === persona.id);
  const personas = [...state.personas];
  if (index >= 0) personas[index] = persona;
  else personas.unshift(persona);
  update({ personas });
}

export function forgetPersona(id: string): void {
  update({ personas: state.personas.filter((persona) => persona.id !== id) });
}

export function usePersonaStore(): StoreState {
  const [, setTick] = useState(0);
  const renderedRevision = state.revision;
  useEffect(() => {
    const listener = () => setTick((tick) => tick + 1);
    listeners.add(listener);
    // Effects run after the next frame (a background tab has none): pages that arrived between this
    // view's first render and now notified no one, so render them now (the first open's empty table).
    if (state.revision !== renderedRevision) listener();
    startLoading();
    return () => {
      listeners.delete(listener);
    };
  }, []);
  return state;
}
