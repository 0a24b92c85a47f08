/**
 * Patient-level splits. Every split keeps all images of a patient together, is seeded, and is stratified by
 * iterative stratification (Sechidis et al. 2011) over patients instead of images:
 * 1. patients are shuffled with the seed (this decides ties);
 * 2. labels are taken from the one with the fewest positive patients to the one with the most; each not yet
 *    placed patient with a positive image for the label goes to the split that lacks the most of this patient's
 *    labels entirely (counting labels that have at least as many positive patients as there are splits: so small
 *    sets keep positives on every side where possible), then to the largest shortfall against its share of the
 *    label's positive images, then to the largest shortfall of images;
 * 3. patients without any positive go to the split with the largest shortfall of images.
 * A split whose share is above 0 but which ends up empty is an error: the dataset has too few patients for it.
 */
import { LabelState, subsetOf, type Dataset, type DatasetRecord } from './dataset.js';
import { nihPatientId, type NihOfficialLists } from './nih.js';
import { seededRandom, shuffleInPlace } from '../random.js';

export interface PatientSplitOptions {
  /** Split name -> share of the images, e.g. { train: 0.8, validation: 0.1, test: 0.1 } (normalised to sum 1). */
  fractions: Record<string, number>;
  seed: number;
  /** Stratify by label as described above (default true); false balances only the number of images. */
  stratify?: boolean;
}

interface PatientGroup {
  patientId: string;
  records: number[];
  /** Positive images per label. */
  positives: Int32Array;
}

export function splitByPatient(dataset: Dataset, options: PatientSplitOptions): Record<string, Dataset> {
  const names = Object.keys(options.fractions);
  if (names.length === 0) throw new Error('splitByPatient: no splits named in "fractions"');
  for (const name of names) {
    const share = options.fractions[name];
    if (!(Number.isFinite(share) && share >= 0)) throw new Error(`splitByPatient: share of "${name}" must be a number >= 0, got ${share}`);
  }
  const total = names.reduce((sum, name) => sum + options.fractions[name], 0);
  if (!(total > 0)) throw new Error('splitByPatient: the shares add up to 0');
  const shares = names.map((name) => options.fractions[name] / total);
  const c = dataset.labelSet.labels.length;
  const random = seededRandom(options.seed);

  const groups = shuffleInPlace(groupByPatient(dataset.records, c), random);
  const totalPositives = new Float64Array(c);
  for (const group of groups) for (let j = 0; j < c; j++) totalPositives[j] += group.positives[j];
  const imagesWanted = shares.map((share) => share * dataset.records.length);
  const positivesWanted = shares.map((share) => Float64Array.from(totalPositives, (count) => share * count));
  const imagesPlaced = new Float64Array(names.length);
  const positivesPlaced = names.map(() => new Float64Array(c));
  const splitOf = new Int32Array(groups.length).fill(-1);

  const place = (g: number, s: number) => {
    splitOf[g] = s;
    imagesPlaced[s] += groups[g].records.length;
    for (let j = 0; j < c; j++) positivesPlaced[s][j] += groups[g].positives[j];
  };
  const best = (score: (s: number) => number[]): number => {
    let bestSplit = -1;
    let bestScore: number[] = [];
    for (let s = 0; s < names.length; s++) {
      if (shares[s] === 0) continue;
      const candidate = score(s);
      if (bestSplit < 0 || compareLexicographic(candidate, bestScore) > 0) {
        bestSplit = s;
        bestScore = candidate;
      }
    }
    return bestSplit;
  };

  if (options.stratify ?? true) {
    const activeSplits = shares.filter((share) => share > 0).length;
    const positivePatients = new Int32Array(c);
    for (const group of groups) for (let j = 0; j < c; j++) if (group.positives[j] > 0) positivePatients[j]++;
    const labelOrder = [...Array(c).keys()].filter((j) => positivePatients[j] > 0).sort((a, b) => positivePatients[a] - positivePatients[b]);
    const everySide = (l: number) => positivePatients[l] >= activeSplits;
    for (const j of labelOrder) {
      groups.forEach((group, g) => {
        if (splitOf[g] >= 0 || group.positives[j] === 0) return;
        place(
          g,
          best((s) => {
            // How many of this patient's labels the split still lacks entirely (counting only labels with enough patients).
            let lacking = 0;
            for (let l = 0; l < c; l++) if (group.positives[l] > 0 && everySide(l) && positivesPlaced[s][l] === 0) lacking++;
            return [lacking, positivesWanted[s][j] - positivesPlaced[s][j], imagesWanted[s] - imagesPlaced[s]];
          }),
        );
      });
    }
  }
  groups.forEach((_, g) => {
    if (splitOf[g] < 0) place(g, best((s) => [imagesWanted[s] - imagesPlaced[s]]));
  });

  const chosen = new Int32Array(dataset.records.length);
  groups.forEach((group, g) => group.records.forEach((r) => (chosen[r] = splitOf[g])));
  const result: Record<string, Dataset> = {};
  names.forEach((name, s) => {
    const records = dataset.records.filter((_, r) => chosen[r] === s);
    if (records.length === 0 && shares[s] > 0) {
      throw new Error(
        `splitByPatient: split "${name}" (share ${shares[s].toFixed(3)}) got no patient: ${groups.length} patient(s) are too few for these shares`,
      );
    }
    result[name] = subsetOf(dataset, records);
  });
  checkNoLeakage(result);
  return result;
}

function groupByPatient(records: readonly DatasetRecord[], c: number): PatientGroup[] {
  const byPatient = new Map<string, PatientGroup>();
  records.forEach((record, r) => {
    let group = byPatient.get(record.patientId);
    if (group === undefined) {
      group = { patientId: record.patientId, records: [], positives: new Int32Array(c) };
      byPatient.set(record.patientId, group);
    }
    group.records.push(r);
    for (let j = 0; j < c; j++) if (record.states[j] === LabelState.positive) group.positives[j]++;
  });
  return [...byPatient.values()];
}

function compareLexicographic(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

export interface LeakedPatient {
  patientId: string;
  splits: string[];
}

/** Thrown when a patient is on more than one side of a split; `patients` lists every one of them. */
export class PatientLeakageError extends Error {
  constructor(readonly patients: LeakedPatient[]) {
    const shown = patients.slice(0, 20).map((p) => `${p.patientId} (${p.splits.join(', ')})`);
    super(
      `patient leakage: ${patients.length} patient(s) appear in more than one split: ${shown.join('; ')}${patients.length > 20 ? `; and ${patients.length - 20} more` : ''}`,
    );
    this.name = 'PatientLeakageError';
  }
}

type SplitMembers = Dataset | readonly { patientId: string }[];

/** Patients found in more than one of the named splits. */
export function findLeakage(splits: Record<string, SplitMembers>): LeakedPatient[] {
  const seenIn = new Map<string, string[]>();
  for (const [name, members] of Object.entries(splits)) {
    const list = 'records' in members ? members.records : members;
    for (const { patientId } of list) {
      const where = seenIn.get(patientId);
      if (where === undefined) seenIn.set(patientId, [name]);
      else if (where[where.length - 1] !== name) where.push(name);
    }
  }
  return [...seenIn].filter(([, where]) => where.length > 1).map(([patientId, where]) => ({ patientId, splits: where }));
}

/** Throws a `PatientLeakageError` naming every patient that appears in more than one split. */
export function checkNoLeakage(splits: Record<string, SplitMembers>): void {
  const leaked = findLeakage(splits);
  if (leaked.length > 0) throw new PatientLeakageError(leaked);
}

/** The patients of a list of NIH image names, as split members for `checkNoLeakage`. */
export function nihListMembers(names: readonly string[]): { patientId: string }[] {
  return names.map((name) => {
    const patientId = nihPatientId(name);
    if (patientId === undefined) throw new Error(`"${name}" is not an NIH image name (NNNNNNNN_NNN.png)`);
    return { patientId };
  });
}

export interface OfficialSplitOptions {
  /** Share of train_val's images carved out, by patient, as validation (default 0.1). */
  validationFraction?: number;
  seed: number;
  stratify?: boolean;
}

/**
 * NIH's official split: test = the records listed in test_list.txt, and train_val_list.txt's records split by
 * patient into train and validation. A record in neither list is an error (it is not one of NIH's images).
 */
export function officialNihSplit(
  dataset: Dataset,
  lists: NihOfficialLists,
  options: OfficialSplitOptions,
): { train: Dataset; validation: Dataset; test: Dataset } {
  const inTest = new Set(lists.test);
  const inTrainVal = new Set(lists.trainVal);
  const unlisted = dataset.records.filter((record) => !inTest.has(record.id) && !inTrainVal.has(record.id));
  if (unlisted.length > 0) {
    throw new Error(
      `officialNihSplit: ${unlisted.length} record(s) are in neither official list: ${unlisted
        .slice(0, 10)
        .map((r) => `"${r.id}" (${r.source.file} row ${r.source.row})`)
        .join(', ')}${unlisted.length > 10 ? ', ...' : ''}`,
    );
  }
  const validationFraction = options.validationFraction ?? 0.1;
  if (!(validationFraction > 0 && validationFraction < 1)) {
    throw new Error(`officialNihSplit: validationFraction must be between 0 and 1, got ${validationFraction}`);
  }
  const test = subsetOf(
    dataset,
    dataset.records.filter((record) => inTest.has(record.id)),
  );
  const trainVal = subsetOf(
    dataset,
    dataset.records.filter((record) => inTrainVal.has(record.id)),
  );
  const { train, validation } = splitByPatient(trainVal, {
    fractions: { train: 1 - validationFraction, validation: validationFraction },
    seed: options.seed,
    stratify: options.stratify,
  });
  const result = { train, validation, test };
  checkNoLeakage(result);
  return result;
}
