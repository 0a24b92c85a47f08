/** cxr-lens data layer: label sets and their alignment, dataset readers, patient splits, class statistics, cache. */
export * from './labels.js';
export * from './dataset.js';
export * from './report.js';
export { readCsv, parseCsv, type CsvTable } from './csv.js';
export { indexImageFolder } from './images.js';
export * from './nih.js';
export * from './chexpert.js';
export * from './generic.js';
export * from './uncertainty.js';
export * from './align.js';
export * from './split.js';
export * from './stats.js';
export { seededRandom, shuffleInPlace } from '../random.js';
export * from './cache.js';
export * from './formats.js';
