/**
 * The Big Five as a radar chart in plain SVG: five axes, rings at 0.25 steps, one polygon per
 * persona (the second one overlaid). Plain SVG rather than a chart library: it is ~80 lines, needs
 * no canvas, scales with the page and stays readable by a screen reader (title and description).
 */
import { TRAITS, type Traits } from './api';

export interface RadarSeries {
  label: string;
  traits: Traits;
}

const SIZE = 320;
const CENTER = SIZE / 2;
const RADIUS = 110;

const point = (axis: number, value: number): [number, number] => {
  const angle = -Math.PI / 2 + (axis * 2 * Math.PI) / TRAITS.length;
  return [CENTER + Math.cos(angle) * RADIUS * value, CENTER + Math.sin(angle) * RADIUS * value];
};

const polygon = (values: number[]) => values.map((value, axis) => point(axis, value).map((n) => n.toFixed(1)).join(',')).join(' ');

export function Radar(props: { series: RadarSeries[] }) {
  const description = props.series
    .map((series) => `${series.label}: ${TRAITS.map((trait) => `${trait} ${series.traits[trait].toFixed(2)}`).join(', ')}`)
    .join('. ');
  return (
    <figure class="radar">
      <svg viewBox={`-110 -15 ${SIZE + 220} ${SIZE + 30}`} role="img" aria-labelledby="radar-title radar-desc" data-testid="radar">
        <title id="radar-title">Big Five radar chart</title>
        <desc id="radar-desc">{description}</desc>
        {[0.25, 0.5, 0.75, 1].map((ring) => (
          <polygon class="ring" points={polygon(TRAITS.map(() => ring))} />
        ))}
        {TRAITS.map((trait, axis) => {
          const [x, y] = point(axis, 1);
          const [lx, ly] = point(axis, 1.2);
          return (
            <g>
              <line class="axis" x1={CENTER} y1={CENTER} x2={x} y2={y} />
              <text class="axis-label" x={lx} y={ly} text-anchor={Math.abs(lx - CENTER) < 5 ? 'middle' : lx > CENTER ? 'start' : 'end'} dominant-baseline="middle">
                {trait}
              </text>
            </g>
          );
        })}
        {props.series.map((series, index) => (
          <g class={`series series-${index}`} data-series={series.label}>
            <polygon points={polygon(TRAITS.map((trait) => series.traits[trait]))} />
            {TRAITS.map((trait, axis) => {
              const [x, y] = point(axis, series.traits[trait]);
              return <circle cx={x} cy={y} r="3.5" />;
            })}
          </g>
        ))}
      </svg>
      <figcaption>
        <ul class="legend">
          {props.series.map((series, index) => (
            <li>
              <span class={`swatch series-${index}`} aria-hidden="true" /> {series.label}
            </li>
          ))}
        </ul>
      </figcaption>
    </figure>
  );
}
