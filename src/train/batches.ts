/**
 * Training and evaluation batches from the image cache: model pixels -> (seeded augmentation) -> the model's
 * normalisation, with targets, masks and encoded patient metadata. Augmentation of the image at position p of
 * epoch e uses the seed (run seed, e, p), so a run resumed mid-epoch sees exactly the same images.
 */
import { type Dataset, type ImageCache, type RecordMetadata, batchTensor } from '../data/index.js';
import type { PatientMetadata } from '../models/patient-metadata.js';
import { type AugmentationSpec, type PreprocessingSpec, augment, mixSeed } from '../imaging/index.js';
import { metadataBatch } from '../inference/metadata.js';
import { type HostTensor, float32 } from '../onnx/index.js';

export interface Batch {
  images: HostTensor<'float32'>;
  targets: HostTensor<'float32'>;
  mask: HostTensor<'float32'>;
  /** Encoded age/sex/view, for models with a metadata input. */
  metadata?: HostTensor<'float32'>;
  /** Record indices (into the dataset) of the batch's rows. */
  records: number[];
}

export interface BatchOptions {
  spec: PreprocessingSpec;
  batchSize: number;
  withMetadata: boolean;
  /** Training: augmentation and the seed it is drawn from; evaluation: none. */
  augmentation?: { spec: AugmentationSpec; seed: number; epoch: number };
  /** Skip this many batches (resuming mid-epoch). */
  startBatch?: number;
}

/** A record's age, sex and view (CheXpert keeps AP/PA/LL in `projection`, its `view` only says Frontal/Lateral). */
export function patientMetadata(meta: RecordMetadata): PatientMetadata {
  return { age: meta.age, sex: meta.sex, view: meta.projection ?? meta.view };
}

export async function* batches(cache: ImageCache, dataset: Dataset, order: ArrayLike<number>, options: BatchOptions): AsyncGenerator<Batch> {
  const { spec, batchSize } = options;
  const c = dataset.labelSet.labels.length;
  const first = (options.startBatch ?? 0) * batchSize;
  const positions = Array.from({ length: Math.max(0, order.length - first) }, (_, k) => first + k);
  const slots = positions.map((p) => cache.slotOf(dataset.records[order[p]].id));
  let offset = 0;
  for await (const chunk of cache.batches(slots, batchSize)) {
    const batchPositions = positions.slice(offset, offset + chunk.slots.length);
    offset += chunk.slots.length;
    const records = batchPositions.map((p) => order[p]);
    let pixels = chunk.pixels;
    const aug = options.augmentation;
    if (aug) {
      const plane = spec.height * spec.width;
      pixels = new Uint8Array(chunk.pixels.length);
      batchPositions.forEach((p, k) => {
        const image = chunk.pixels.subarray(k * plane, (k + 1) * plane);
        pixels.set(augment(image, spec.width, spec.height, aug.spec, mixSeed(aug.seed, aug.epoch, p)).pixels, k * plane);
      });
    }
    const targets = float32([records.length, c]);
    const mask = float32([records.length, c]);
    records.forEach((r, k) => {
      const record = dataset.records[r];
      targets.data.set(record.labels, k * c);
      for (let j = 0; j < c; j++) mask.data[k * c + j] = record.mask[j];
    });
    yield {
      images: batchTensor(pixels, spec),
      targets,
      mask,
      metadata: options.withMetadata ? metadataBatch(records.map((r) => patientMetadata(dataset.records[r].metadata))) : undefined,
      records,
    };
  }
}
