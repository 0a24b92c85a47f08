/** The real NIH subset's labels with deterministic synthetic scores: positives score higher, plus seeded noise. */
import { readNihDataset } from '../../src/data/nih.js';
import { NIH_FINDINGS } from '../../src/data/labels.js';
import type { EvaluationInput } from '../../src/eval/evaluate.js';
import { SeededRandom } from '../../src/eval/random.js';
import { sharedDataPath } from '../helpers/fixtures.js';

export const NIH_SUBSET_CSV = sharedDataPath('nih-cxr14-subset', 'Data_Entry.csv');

/** sigmoid(1.3 * label - 2.2 + noise), rounded to 6 decimals as `cxr predict --csv` writes probabilities. */
export function syntheticProbability(label: number, random: SeededRandom): number {
  const noise = (random.uint32() / 2 ** 32 + random.uint32() / 2 ** 32 + random.uint32() / 2 ** 32 - 1.5) * 2;
  return Number((1 / (1 + Math.exp(-(1.3 * label - 2.2 + noise)))).toFixed(6));
}

export async function nihSubsetInput(seed = 1): Promise<EvaluationInput & { probabilities: Float64Array; targets: Float64Array }> {
  const dataset = await readNihDataset({ csvPath: NIH_SUBSET_CSV, checkImages: false });
  const random = new SeededRandom(seed);
  const c = NIH_FINDINGS.length;
  const n = dataset.records.length;
  const probabilities = new Float64Array(n * c);
  const targets = new Float64Array(n * c);
  dataset.records.forEach((record, i) => {
    for (let j = 0; j < c; j++) {
      targets[i * c + j] = record.labels[j];
      probabilities[i * c + j] = syntheticProbability(record.labels[j], random);
    }
  });
  return { labels: [...NIH_FINDINGS], probabilities, targets, ids: dataset.records.map((r) => r.id), clusters: dataset.records.map((r) => r.patientId) };
}
