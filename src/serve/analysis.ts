/**
 * The shapes of an analysis: what a client asks for and what the server answers. Shared by the HTTP routes, the
 * inference workers and (as types only) the web viewer, whose private mode builds the same objects in the browser.
 */
import type { ColormapName, Geometry, ImageMetadata } from '../imaging/browser.js';
import type { Finding } from '../outputs/findings.js';
import type { InputFlag, InputVerdict } from '../safety/flags.js';

export type { InputFlag, InputVerdict };

export type HeatmapFormat = 'png' | 'raw' | 'both' | 'none';
export const HEATMAP_FORMATS: readonly HeatmapFormat[] = ['png', 'raw', 'both', 'none'];

export interface AnalyzeRequest {
  /** Findings to draw heatmaps for (probabilities are always given for every finding). */
  findings: string[];
  /** Explanation methods to run; empty for none. */
  methods: string[];
  heatmap: HeatmapFormat;
  colormap: ColormapName;
  /** Give findings (and heatmaps) even when the input checks reject the image, marked `rejected-shown`. */
  showRejected: boolean;
  /** Also give the film as the overlays draw it (8-bit gray PNG), for reports. */
  film?: boolean;
}

/** A finding's probability and, only where the model has a validated threshold, its decision. */
export type FindingResult = Finding;

/** A map on the model-input grid as little-endian float32 values, base64 encoded (exact and compact). */
export interface RawMap {
  width: number;
  height: number;
  dtype: 'float32';
  data: string;
}

export interface MapResult {
  finding: string;
  /** The map drawn over the original image: a data: URL of a PNG at the image's own size. */
  overlayPng?: string;
  raw?: RawMap;
}

export interface ExplanationResult {
  method: string;
  /** How model-input coordinates map onto the original image (imaging's heatmapToSource). */
  geometry: Geometry;
  maps: MapResult[];
}

export interface ImageResult {
  name: string;
  width: number;
  height: number;
  format: string;
  notes: string[];
  metadata: ImageMetadata;
}

export interface Timings {
  queuedMs: number;
  decodeMs: number;
  predictMs: number;
  explainMs: number;
  totalMs: number;
}

export interface AnalyzeResponse {
  requestId: string;
  model: { architecture: string; weights: string; sha256: string };
  image: ImageResult;
  /** What the input checks raised, with reasons; a `reject` flag withholds the findings unless asked otherwise. */
  inputFlags: InputFlag[];
  verdict: InputVerdict;
  /** One entry per model label, in the model's label order; empty when the input was rejected. */
  findings: FindingResult[];
  explanations: ExplanationResult[];
  timings: Timings;
  notice: string;
}

export const RESEARCH_NOTICE = 'Research use only; not for clinical decisions.';
