/**
 * Published per-finding AUROCs on NIH ChestX-ray14, for the side-by-side table of an evaluation report. Each
 * number is copied as printed in its source, with where it comes from, how it was checked, and which test split
 * it was measured on: results on different splits (or dataset versions) are not directly comparable, and the
 * report says so.
 *
 * How the numbers were checked (no paper PDF was available while writing this; the lead should check each
 * column against its table before relying on it):
 * - CheXNet and the Wang et al. column of CheXNet's Table 1: two independent public copies of that table
 *   (the READMEs of arnoweng/CheXNet and jrzech/reproduce-chexnet) agree with each other and with the
 *   paper as recalled when this module was written, digit for digit.
 * - Wang et al. CVPR Table 4 (ResNet-50, 8 findings): one public copy (a thesis README's literature table)
 *   agrees with the paper as recalled, digit for digit.
 * - SwinCheX: one public copy only (the same README's table); its 14 values average 0.8097, matching the mean
 *   AUC of 0.810 stated in the paper's abstract, but the per-finding values are NOT verified against the paper.
 */

export type PublishedSplit = 'official' | 'random-patient' | 'random';

export interface PublishedSource {
  id: string;
  /** Short name for table headers. */
  name: string;
  citation: string;
  url: string;
  /** Where in the paper the numbers are. */
  table: string;
  model: string;
  /** Which test set: NIH's official patient-wise test list, or a random split of the authors' own. */
  split: PublishedSplit;
  splitNote: string;
  /** How the numbers were checked, in words. */
  verification: string;
  /** False where the numbers still need checking against the paper itself. */
  verified: boolean;
  /** The mean the paper itself reports, where it does (over its findings). */
  reportedMean?: number;
  /** Per NIH finding (NIH spelling), as printed; findings the source does not report are absent. */
  auroc: Readonly<Record<string, number>>;
}

export const PUBLISHED_NIH_AUROCS: readonly PublishedSource[] = [
  {
    id: 'wang2017-cvpr',
    name: 'Wang 2017 (CVPR)',
    citation:
      'X. Wang, Y. Peng, L. Lu, Z. Lu, M. Bagheri, R. M. Summers. ChestX-ray8: Hospital-scale Chest X-ray Database and ' +
      'Benchmarks on Weakly-Supervised Classification and Localization of Common Thorax Diseases. CVPR 2017.',
    url: 'https://openaccess.thecvf.com/content_cvpr_2017/papers/Wang_ChestX-ray8_Hospital-Scale_Chest_CVPR_2017_paper.pdf',
    table: 'Table 4, ResNet-50',
    model: 'ResNet-50 (ImageNet-pretrained, weakly supervised)',
    split: 'random',
    splitNote:
      'ChestX-ray8, the first release (108,948 images, 8 findings), on the paper\'s own random 70/10/20 split; ' +
      'NIH\'s official test list came later with ChestX-ray14. Only 8 findings.',
    verification: 'one public copy of the table agrees with the paper as recalled; not checked against the PDF here',
    verified: true,
    auroc: {
      Atelectasis: 0.7069,
      Cardiomegaly: 0.8141,
      Effusion: 0.7362,
      Infiltration: 0.6128,
      Mass: 0.5609,
      Nodule: 0.7164,
      Pneumonia: 0.6333,
      Pneumothorax: 0.7891,
    },
  },
  {
    id: 'wang2017-as-cited-by-chexnet',
    name: 'Wang 2017 (14, via CheXNet)',
    citation:
      'Wang et al. 2017 (ChestX-ray8, arXiv:1705.02315, updated to 14 findings), as reported in the "Wang et al. (2017)" ' +
      'column of Table 1 of Rajpurkar et al. 2017 (CheXNet, arXiv:1711.05225).',
    url: 'https://arxiv.org/abs/1711.05225',
    table: 'CheXNet Table 1, column "Wang et al. (2017)"',
    model: 'ResNet-50 (Wang et al.)',
    split: 'random',
    splitNote: 'Wang et al.\'s own split of ChestX-ray14 at the time CheXNet cited it; not CheXNet\'s test set and not necessarily NIH\'s official list.',
    verification: 'two independent public copies of CheXNet\'s Table 1 agree with each other and with the paper as recalled',
    verified: true,
    auroc: {
      Atelectasis: 0.716,
      Cardiomegaly: 0.807,
      Effusion: 0.784,
      Infiltration: 0.609,
      Mass: 0.706,
      Nodule: 0.671,
      Pneumonia: 0.633,
      Pneumothorax: 0.806,
      Consolidation: 0.708,
      Edema: 0.835,
      Emphysema: 0.815,
      Fibrosis: 0.769,
      Pleural_Thickening: 0.708,
      Hernia: 0.767,
    },
  },
  {
    id: 'chexnet',
    name: 'CheXNet',
    citation:
      'P. Rajpurkar, J. Irvin, K. Zhu, B. Yang, H. Mehta, T. Duan, D. Ding, A. Bagul, C. Langlotz, K. Shpanskaya, ' +
      'M. P. Lungren, A. Y. Ng. CheXNet: Radiologist-Level Pneumonia Detection on Chest X-Rays with Deep Learning. arXiv:1711.05225, 2017.',
    url: 'https://arxiv.org/abs/1711.05225',
    table: 'Table 1, column "CheXNet (ours)"',
    model: 'DenseNet-121 (ImageNet-pretrained)',
    split: 'random-patient',
    splitNote: 'a random patient-wise split (70% train, 10% validation, 20% test, no patient in two sets), not NIH\'s official test list.',
    verification: 'two independent public copies of Table 1 agree with each other and with the paper as recalled',
    verified: true,
    reportedMean: 0.841,
    auroc: {
      Atelectasis: 0.8094,
      Cardiomegaly: 0.9248,
      Effusion: 0.8638,
      Infiltration: 0.7345,
      Mass: 0.8676,
      Nodule: 0.7802,
      Pneumonia: 0.768,
      Pneumothorax: 0.8887,
      Consolidation: 0.7901,
      Edema: 0.8878,
      Emphysema: 0.9371,
      Fibrosis: 0.8047,
      Pleural_Thickening: 0.8062,
      Hernia: 0.9164,
    },
  },
  {
    id: 'swinchex',
    name: 'SwinCheX',
    citation:
      'S. Taslimi, S. Taslimi, N. Fathi, M. Salehi, M. H. Rohban. SwinCheX: Multi-label classification on chest X-ray ' +
      'images with transformers. arXiv:2206.04246, 2022.',
    url: 'https://arxiv.org/abs/2206.04246',
    table: 'per-finding AUC table, Swin Transformer with the 3-layer MLP head',
    model: 'Swin-L (ImageNet-22K-pretrained) with a 3-layer MLP head',
    split: 'official',
    splitNote: 'NIH\'s official patient-wise train_val/test lists.',
    verification:
      'UNVERIFIED: from one secondary public copy only; their mean (0.8097) matches the 0.810 of the abstract, ' +
      'but the per-finding values must be checked against the paper',
    verified: false,
    reportedMean: 0.81,
    auroc: {
      Atelectasis: 0.781,
      Cardiomegaly: 0.875,
      Effusion: 0.824,
      Infiltration: 0.701,
      Mass: 0.822,
      Nodule: 0.78,
      Pneumonia: 0.713,
      Pneumothorax: 0.871,
      Consolidation: 0.748,
      Edema: 0.848,
      Emphysema: 0.914,
      Fibrosis: 0.826,
      Pleural_Thickening: 0.778,
      Hernia: 0.855,
    },
  },
];

export interface ComparisonRow {
  label: string;
  ours: number | null;
  /** Per source id; null where the source does not report the finding. */
  published: Record<string, number | null>;
}

export interface PublishedComparison {
  sources: readonly PublishedSource[];
  rows: ComparisonRow[];
  /**
   * Per source: the mean of its AUROCs and ours over the findings both have (so the two means are comparable),
   * and how many findings that is.
   */
  means: Record<string, { theirs: number; ours: number; findings: number } | null>;
}

/**
 * The published numbers beside ours for the findings of `labels` that some source reports (matched by NIH
 * spelling); null when none of the labels is an NIH finding.
 */
export function comparePublished(labels: readonly string[], aurocs: readonly (number | null)[], sources: readonly PublishedSource[] = PUBLISHED_NIH_AUROCS): PublishedComparison | null {
  const rows: ComparisonRow[] = [];
  labels.forEach((label, i) => {
    if (!sources.some((s) => label in s.auroc)) return;
    rows.push({ label, ours: aurocs[i], published: Object.fromEntries(sources.map((s) => [s.id, s.auroc[label] ?? null])) });
  });
  if (rows.length === 0) return null;
  const means: PublishedComparison['means'] = {};
  for (const source of sources) {
    const both = rows.filter((r) => r.ours !== null && r.published[source.id] !== null);
    means[source.id] =
      both.length === 0
        ? null
        : {
            theirs: both.reduce((sum, r) => sum + r.published[source.id]!, 0) / both.length,
            ours: both.reduce((sum, r) => sum + r.ours!, 0) / both.length,
            findings: both.length,
          };
  }
  return { sources, rows, means };
}
