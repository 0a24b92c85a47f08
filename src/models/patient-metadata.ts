/**
 * Patient metadata as a model input: age, sex and view position encoded as a fixed vector with explicit
 * "missing" indicators, so a model trained with metadata still runs (and knows it) when a file has none.
 * Pure; shared by training, inference and the browser.
 */
export interface PatientMetadata {
  /** Years. */
  age?: number;
  sex?: string;
  /** View position: PA, AP, or a lateral (LL, RL, LATERAL). */
  view?: string;
}

export const METADATA_FEATURES = ['age/100', 'age missing', 'sex M', 'sex F', 'sex missing', 'view PA', 'view AP', 'view lateral', 'view missing'] as const;

export function encodeMetadata(meta: PatientMetadata | undefined, into: Float32Array = new Float32Array(METADATA_FEATURES.length), offset = 0): Float32Array {
  const out = into.subarray(offset, offset + METADATA_FEATURES.length);
  out.fill(0);
  const age = meta?.age;
  if (age !== undefined && Number.isFinite(age) && age >= 0 && age < 130) out[0] = age / 100;
  else out[1] = 1;
  const sex = meta?.sex?.trim().toUpperCase();
  if (sex === 'M' || sex === 'MALE') out[2] = 1;
  else if (sex === 'F' || sex === 'FEMALE') out[3] = 1;
  else out[4] = 1;
  const view = meta?.view?.trim().toUpperCase();
  if (view === 'PA') out[5] = 1;
  else if (view === 'AP') out[6] = 1;
  else if (view === 'LL' || view === 'RL' || view === 'LATERAL' || view === 'LAT') out[7] = 1;
  else out[8] = 1;
  return into;
}
