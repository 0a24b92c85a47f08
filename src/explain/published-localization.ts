/**
 * Published weakly supervised localisation accuracies on NIH's boxes, for the side-by-side table of a
 * localisation report.
 *
 * Wang et al., CVPR 2017, Table 4 ("Pathology localization accuracy and average false positive number for 8
 * disease classes"), ResNet-50 with heatmaps from the transition layer, at T(IoBB) in {0.1, 0.25, 0.5, 0.75, 0.9}.
 * Copied digit by digit from a text copy of the CVPR paper (its Table 4 and section 3.2) found in the project's
 * store of public material; no PDF was at hand, so this is one copy, checked against itself only. The T(IoU)
 * accuracies are not in the CVPR paper (it refers to its supplementary material, later arXiv versions revised the
 * numbers) and are not given here rather than quoted from memory.
 *
 * Not directly comparable with a local run: the paper evaluated "983 images with 1,600 annotated B-Boxes" of
 * ChestX-ray8, while NIH's public BBox_List_2017.csv holds 984 boxes on 880 images, and a local run sees a handful.
 */

export interface PublishedLocalization {
  id: string;
  name: string;
  citation: string;
  url: string;
  table: string;
  model: string;
  /** How the boxes were made from heatmaps and what counted as correct, in the paper's words (abridged). */
  protocol: string;
  verification: string;
  /** Per T(IoBB): accuracy and average false positives per finding (NIH spelling). */
  iobb: Readonly<Record<string, { accuracy: Readonly<Record<string, number>>; averageFalsePositives: Readonly<Record<string, number>> }>>;
}

const FINDINGS = ['Atelectasis', 'Cardiomegaly', 'Effusion', 'Infiltration', 'Mass', 'Nodule', 'Pneumonia', 'Pneumothorax'] as const;
const row = (values: readonly number[]) => Object.fromEntries(FINDINGS.map((f, i) => [f, values[i]]));

export const WANG_2017_LOCALIZATION: PublishedLocalization = {
  id: 'wang2017-cvpr-localization',
  name: 'Wang 2017 (CVPR)',
  citation:
    'X. Wang, Y. Peng, L. Lu, Z. Lu, M. Bagheri, R. M. Summers. ChestX-ray8: Hospital-scale Chest X-ray Database and ' +
    'Benchmarks on Weakly-Supervised Classification and Localization of Common Thorax Diseases. CVPR 2017.',
  url: 'https://openaccess.thecvf.com/content_cvpr_2017/papers/Wang_ChestX-ray8_Hospital-Scale_Chest_CVPR_2017_paper.pdf',
  table: 'Table 4',
  model: 'ResNet-50, transition layer + global pooling + prediction layer, heatmaps 32 x 32',
  protocol:
    'heatmap intensities normalised to [0, 255] and thresholded at 60 and 180 individually; B-Boxes cover the ' +
    'isolated regions of the binary maps; a localisation is correct when IoU > T(IoU) or IoBB > T(IoBB) ' +
    '(IoBB: intersection over the detected box area)',
  verification: 'copied from a text copy of the CVPR paper (one copy, not the PDF); T(IoU) rows not available',
  iobb: {
    '0.1': { accuracy: row([0.7277, 0.9931, 0.7124, 0.7886, 0.4352, 0.1645, 0.75, 0.4591]), averageFalsePositives: row([0.8323, 0.3506, 0.7998, 0.5589, 0.6423, 0.6047, 0.9055, 0.4776]) },
    '0.25': { accuracy: row([0.55, 0.9794, 0.5424, 0.5772, 0.2823, 0.0506, 0.5583, 0.3469]), averageFalsePositives: row([0.9167, 0.4553, 0.8598, 0.6077, 0.6707, 0.6158, 0.9614, 0.5]) },
    '0.5': { accuracy: row([0.2833, 0.8767, 0.3333, 0.4227, 0.1411, 0.0126, 0.3833, 0.1836]), averageFalsePositives: row([1.0203, 0.563, 0.9268, 0.6585, 0.6941, 0.6189, 1.0132, 0.5285]) },
    '0.75': { accuracy: row([0.1666, 0.726, 0.2418, 0.3252, 0.1176, 0.0126, 0.2583, 0.102]), averageFalsePositives: row([1.0619, 0.6616, 0.9603, 0.6921, 0.7043, 0.6199, 1.0569, 0.5396]) },
    '0.9': { accuracy: row([0.1333, 0.6849, 0.2091, 0.252, 0.0588, 0.0126, 0.2416, 0.0816]), averageFalsePositives: row([1.0752, 0.7226, 0.9797, 0.7124, 0.7144, 0.6199, 1.0732, 0.5437]) },
  },
};
