/**
 * Colour maps for heatmaps, as small polynomial fits (no lookup tables to ship): turbo (Mikhailov 2019, Google's
 * published polynomial approximation), inferno (Matt Zucker's fit of matplotlib's map), and the classic jet.
 * Each maps t in [0, 1] to 8-bit RGB. Pure.
 */
export type ColormapName = 'turbo' | 'inferno' | 'jet';

export const COLORMAP_NAMES: readonly ColormapName[] = ['turbo', 'inferno', 'jet'];

type Rgb = [number, number, number];

function polynomial(t: number, c: readonly (readonly number[])[]): Rgb {
  return c.map((k) => k.reduce((acc, coefficient, i) => acc + coefficient * t ** i, 0)) as Rgb;
}

// Coefficients c0..c6 per channel.
const TURBO = [
  [0.13572138, 4.6153926, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
  [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
  [0.1066733, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
];
const INFERNO = [
  [0.0002189403691192265, 0.1065134194856116, 11.60249308247187, -41.70399613139459, 77.162935699427, -71.31942824499214, 25.13112622477341],
  [0.001651004631001012, 0.5639564367884091, -3.972853965665698, 17.43639888205313, -33.40235894210092, 32.62606426397723, -12.24266895238567],
  [-0.01948089843709184, 3.932712388889277, -15.9423941062914, 44.35414519872813, -81.80730925738993, 73.20951985803202, -23.07032500287172],
];

function jet(t: number): Rgb {
  const channel = (center: number) => Math.min(1, Math.max(0, 1.5 - Math.abs(4 * t - center)));
  return [channel(3), channel(2), channel(1)];
}

export function colormap(name: ColormapName, t: number): Rgb {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0));
  const rgb = name === 'turbo' ? polynomial(x, TURBO) : name === 'inferno' ? polynomial(x, INFERNO) : jet(x);
  return rgb.map((v) => Math.round(255 * Math.min(1, Math.max(0, v)))) as Rgb;
}

/** 256 precomputed colours, for colouring whole maps quickly. */
export function colormapTable(name: ColormapName): Uint8Array {
  const table = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) table.set(colormap(name, i / 255), i * 3);
  return table;
}

export function isColormap(name: string): name is ColormapName {
  return (COLORMAP_NAMES as readonly string[]).includes(name);
}
