/**
 * Writes the default model's fixed held-out split (configs/default-model.split: test_list.txt and
 * train_val_list.txt, in NIH's official-list format) so that no later recipe search ever tunes on those patients.
 * The test patients are the ones the first default model (trained on nih-cxr14-subset and nih-cxr14-64px) held out,
 * plus nih-cxr14-subset2's patients split at the same fractions and seed, as `cxr calibrate --add` did: both the first
 * model and every later one are measured on the same images, none of which either trained on.
 *
 *   node dist/scripts/held-out-split.js [data folder] [out folder]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { resolveConfig } from '../src/train/config.js';
import { readDatasets, splitData } from '../src/train/data.js';

const data = process.argv[2] ?? join('..', 'shared', 'data');
const out = process.argv[3] ?? join('configs', 'default-model.split');
const first = { method: 'patient', train: 0.7, validation: 0.15, test: 0.15 } as const;

const nih = (set: string, csv: string) => ({ format: 'nih', csv: join(data, set, csv), images: join(data, set, 'images') });
const recipe = (datasets: object[]) => resolveConfig({ datasets, split: first, seed: 0 }, 'held-out-split');

const original = await splitData(await readDatasets(recipe([nih('nih-cxr14-subset', 'Data_Entry.csv'), nih('nih-cxr14-64px', 'labels.csv')])), recipe([nih('nih-cxr14-subset', 'Data_Entry.csv')]));
const added = await splitData(await readDatasets(recipe([nih('nih-cxr14-subset2', 'Data_Entry.csv')])), recipe([nih('nih-cxr14-subset2', 'Data_Entry.csv')]));

const names = (part: 'train' | 'validation' | 'test') => [...original[part].records, ...added[part].records].map((r) => r.id);
const test = names('test').sort();
const trainVal = [...names('train'), ...names('validation')].sort();
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'test_list.txt'), `${test.join('\n')}\n`);
writeFileSync(join(out, 'train_val_list.txt'), `${trainVal.join('\n')}\n`);
process.stderr.write(`${test.length} held-out and ${trainVal.length} training/validation images written to ${out}\n`);
