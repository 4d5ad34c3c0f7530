/**
 * The personality map: every persona as a point on the two main directions of the Big Five
 * scores (projection.ts), coloured by a chosen field. Hover or arrow keys show a name; a click or
 * Enter opens the persona.
 */
import { Component } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import { TRAITS, type Persona } from './api';
import { describeAxis, projectTraits } from './projection';
import { usePersonaStore } from './store';
import { PageTitle, ProblemMessage, navigate } from './ui';

const WIDTH = 640;
const HEIGHT = 440;
const PAD = 24;
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];
const OTHER = '#9a9a9a';

type ColourField = 'humor_usage' | 'domain' | 'modes' | 'emotional_style' | (typeof TRAITS)[number];
const COLOUR_FIELDS: Array<{ value: ColourField; label: string }> = [
  { value: 'humor_usage', label: 'Humor' },
  { value: 'domain', label: 'Domain (first)' },
  { value: 'modes', label: 'Mode (first)' },
  { value: 'emotional_style', label: 'Emotional style' },
  ...TRAITS.map((trait) => ({ value: trait, label: `${trait} (score)` })),
];

interface Colouring {
  colourOf: (persona: Persona) => string;
  legend: Array<{ label: string; colour: string }>;
}

function colouring(personas: Persona[], field: ColourField): Colouring {
  if ((TRAITS as readonly string[]).includes(field)) {
    const trait = field as (typeof TRAITS)[number];
    const shade = (score: number) => `hsl(${Math.round(220 - 200 * score)} 70% 45%)`;
    return { colourOf: (persona) => shade(persona.traits[trait]), legend: [0, 0.5, 1].map((score) => ({ label: `${trait} ${score}`, colour: shade(score) })) };
  }
  const valueOf = (persona: Persona): string => {
    if (field === 'domain' || field === 'modes') return persona[field][0] ?? '(none)';
    return persona[field as 'humor_usage' | 'emotional_style'] ?? '(not set)';
  };
  const counts = new Map<string, number>();
  for (const persona of personas) counts.set(valueOf(persona), (counts.get(valueOf(persona)) ?? 0) + 1);
  const top = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, PALETTE.length).map(([value]) => value);
  const colours = new Map(top.map((value, index) => [value, PALETTE[index]!]));
  const legend = top.map((value) => ({ label: `${value} (${counts.get(value)})`, colour: colours.get(value)! }));
  if (counts.size > top.length) legend.push({ label: `other (${counts.size - top.length} values)`, colour: OTHER });
  return { colourOf: (persona) => colours.get(valueOf(persona)) ?? OTHER, legend };
}

interface PlacedPoint {
  persona: Persona;
  x: number;
  y: number;
  colour: string;
}

/** The points, re-rendered only when they change (not on every hover). */
class Points extends Component<{ points: PlacedPoint[] }> {
  override shouldComponentUpdate(next: { points: PlacedPoint[] }) {
    return next.points !== this.props.points;
  }
  override render() {
    return (
      <g class="points">
        {this.props.points.map((point, index) => (
          <circle cx={point.x.toFixed(1)} cy={point.y.toFixed(1)} r="3.5" fill={point.colour} data-index={index} data-name={point.persona.name} />
        ))}
      </g>
    );
  }
}

export function MapView() {
  const store = usePersonaStore();
  const [field, setField] = useState<ColourField>('humor_usage');
  const [active, setActive] = useState<number | undefined>();

  const projection = useMemo(() => (store.personas.length >= 2 ? projectTraits(store.personas.map((persona) => persona.traits)) : undefined), [store.revision]);
  const points = useMemo(() => {
    if (!projection) return [];
    const xs = projection.points.map(([x]) => x);
    const ys = projection.points.map(([, y]) => y);
    const [minX, maxX, minY, maxY] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const scaleX = (WIDTH - 2 * PAD) / (maxX - minX || 1);
    const scaleY = (HEIGHT - 2 * PAD) / (maxY - minY || 1);
    const { colourOf } = colouring(store.personas, field);
    return store.personas.map((persona, index) => ({
      persona,
      x: PAD + (projection.points[index]![0] - minX) * scaleX,
      // SVG's y grows downwards; the second axis grows upwards.
      y: HEIGHT - PAD - (projection.points[index]![1] - minY) * scaleY,
      colour: colourOf(persona),
    }));
  }, [projection, field]);
  const legend = useMemo(() => colouring(store.personas, field).legend, [store.revision, field]);

  const activePoint = active !== undefined ? points[active] : undefined;

  /** Arrow keys: the nearest point in that direction (within a 90° cone). */
  function step(dx: number, dy: number) {
    if (!points.length) return;
    const from = activePoint ?? { x: WIDTH / 2, y: HEIGHT / 2 };
    let best: number | undefined;
    let bestCost = Infinity;
    points.forEach((point, index) => {
      if (index === active) return;
      const vx = point.x - from.x;
      const vy = point.y - from.y;
      const along = vx * dx + vy * dy;
      const across = Math.abs(vx * dy - vy * dx);
      if (along <= 0 || across > along) return;
      const cost = along + 2 * across;
      if (cost < bestCost) {
        bestCost = cost;
        best = index;
      }
    });
    if (best !== undefined) setActive(best);
    else if (active === undefined) setActive(0);
  }

  const pointAt = (target: EventTarget | null) => {
    const index = (target as Element | null)?.getAttribute?.('data-index');
    return index ? Number(index) : undefined;
  };

  const axisText = (index: 0 | 1) => {
    if (!projection) return null;
    const axis = projection.axes[index];
    const { positive, negative } = describeAxis(axis);
    return (
      <li>
        <strong>{index === 0 ? 'Horizontal' : 'Vertical'}</strong> ({Math.round(axis.varianceShare * 100)}% of the variance):{' '}
        {index === 0 ? 'right' : 'up'} is more {positive || '—'}
        {negative ? ` and less ${negative}` : ''}.
      </li>
    );
  };

  return (
    <section>
      <PageTitle>Personality map</PageTitle>
      <p>
        Each dot is a persona, placed by its Big Five scores projected onto the two directions in which this collection's personalities differ most
        (principal components). Close dots have similar profiles.
      </p>
      {projection && <ul class="axes" data-testid="map-axes">{axisText(0)}{axisText(1)}</ul>}
      <div class="field inline">
        <label for="map-colour">Colour by</label>
        <select id="map-colour" value={field} onChange={(event) => setField(event.currentTarget.value as ColourField)}>
          {COLOUR_FIELDS.map((option) => (
            <option value={option.value}>{option.label}</option>
          ))}
        </select>
      </div>
      <p class="status" role="status">
        {store.personas.length.toLocaleString()} personas{store.loading ? ' (loading more…)' : ''}
      </p>
      {store.error && <ProblemMessage error={store.error} />}
      <div class="map-wrap">
        <svg
          class="map"
          viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
          // Lower case: on SVG elements Preact sets attributes by name, and only `tabindex` is one.
          tabindex={0}
          role="application"
          aria-roledescription="personality map"
          aria-label="Personality map: arrow keys move between personas, Enter opens the selected one"
          aria-describedby="map-active"
          data-testid="map"
          onMouseOver={(event) => {
            const index = pointAt(event.target);
            if (index !== undefined) setActive(index);
          }}
          onClick={(event) => {
            const index = pointAt(event.target);
            if (index !== undefined) navigate(`/personas/${points[index]!.persona.id}`);
          }}
          onKeyDown={(event) => {
            const moves: Record<string, [number, number]> = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
            const move = moves[event.key];
            if (move) {
              event.preventDefault();
              step(...move);
            } else if (event.key === 'Enter' && activePoint) {
              event.preventDefault();
              navigate(`/personas/${activePoint.persona.id}`);
            }
          }}
        >
          <rect class="map-frame" x="0.5" y="0.5" width={WIDTH - 1} height={HEIGHT - 1} />
          <Points points={points} />
          {activePoint && (
            <g class="map-active" pointer-events="none">
              <circle cx={activePoint.x} cy={activePoint.y} r="7" />
              <text x={activePoint.x + (activePoint.x > WIDTH * 0.7 ? -10 : 10)} y={activePoint.y - 10} text-anchor={activePoint.x > WIDTH * 0.7 ? 'end' : 'start'}>
                {activePoint.persona.name}
              </text>
            </g>
          )}
        </svg>
      </div>
      <p id="map-active" class="status" aria-live="polite">
        {activePoint ? `${activePoint.persona.name} (${activePoint.persona.domain.join(', ')}): Enter or click to open.` : 'Hover a dot, or focus the map and use the arrow keys.'}
      </p>
      <ul class="legend" aria-label="Colours">
        {legend.map((item) => (
          <li>
            <svg class="swatch" viewBox="0 0 10 10" aria-hidden="true">
              <circle cx="5" cy="5" r="5" fill={item.colour} />
            </svg>{' '}
            {item.label}
          </li>
        ))}
      </ul>
    </section>
  );
}
