/**
 * cxr-lens evaluation: metrics, intervals, thresholds, calibration and reports, in pure TypeScript (no Node
 * modules, runs in browsers). Reading and writing files is in ./files.js.
 */
export * from './binary.js';
export * from './roc.js';
export * from './pr.js';
export * from './delong.js';
export * from './bootstrap.js';
export * from './thresholds.js';
export * from './calibration.js';
export * from './normal.js';
export { SeededRandom } from './random.js';
export * from './published.js';
export * from './evaluate.js';
export * from './predictions.js';
export * from './csv.js';
export { evaluationToHtml, type HtmlOptions } from './html.js';
