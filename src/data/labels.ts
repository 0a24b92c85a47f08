/** Label sets. Finding names use NIH's spelling; other datasets map onto them through an alignment table. */

/** The 14 findings of NIH ChestX-ray14 (Wang et al. 2017), in the order CheXNet and most papers report them. */
export const NIH_FINDINGS = [
  'Atelectasis',
  'Cardiomegaly',
  'Effusion',
  'Infiltration',
  'Mass',
  'Nodule',
  'Pneumonia',
  'Pneumothorax',
  'Consolidation',
  'Edema',
  'Emphysema',
  'Fibrosis',
  'Pleural_Thickening',
  'Hernia',
] as const;

export type NihFinding = (typeof NIH_FINDINGS)[number];

/** A named, ordered list of labels: the columns of a target matrix. */
export interface LabelSet {
  readonly name: string;
  readonly labels: readonly string[];
}

export const NIH_LABEL_SET: LabelSet = { name: 'nih-chestxray14', labels: NIH_FINDINGS };

/** The 14 observations of CheXpert (Irvin et al. 2019), in the column order of its train.csv / valid.csv. */
export const CHEXPERT_OBSERVATIONS = [
  'No Finding',
  'Enlarged Cardiomediastinum',
  'Cardiomegaly',
  'Lung Opacity',
  'Lung Lesion',
  'Edema',
  'Consolidation',
  'Pneumonia',
  'Atelectasis',
  'Pneumothorax',
  'Pleural Effusion',
  'Pleural Other',
  'Fracture',
  'Support Devices',
] as const;

export type ChexpertObservation = (typeof CHEXPERT_OBSERVATIONS)[number];

export const CHEXPERT_LABEL_SET: LabelSet = { name: 'chexpert', labels: CHEXPERT_OBSERVATIONS };

/** The five observations of the CheXpert competition, in the order its leaderboard reports them. */
export const CHEXPERT_COMPETITION_TASKS = [
  'Atelectasis',
  'Cardiomegaly',
  'Consolidation',
  'Edema',
  'Pleural Effusion',
] as const satisfies readonly ChexpertObservation[];

/**
 * How one NIH finding relates to one CheXpert observation.
 * - `same`: the same finding under another name; labels of one stand in for the other, so a model trained on one
 *   dataset can be scored on the other for this pair.
 * - `narrower`: the NIH finding is one kind of the CheXpert observation (a Mass is a Lung Lesion, but not every Lung
 *   Lesion is a Mass). An NIH positive implies a CheXpert positive, not the reverse, so scores across such a pair
 *   are only approximate and are used only when asked for.
 */
export type AlignmentKind = 'same' | 'narrower';

export interface LabelAlignment {
  readonly nih: NihFinding;
  readonly chexpert: ChexpertObservation;
  readonly kind: AlignmentKind;
  readonly note: string;
}

/**
 * The one table that relates NIH's findings and CheXpert's observations. NIH findings absent here (Emphysema,
 * Fibrosis, Hernia) and CheXpert observations absent here (Enlarged Cardiomediastinum, Fracture, Support Devices)
 * have no counterpart. CheXpert's "No Finding" corresponds to an NIH image with none of the 14 findings, which is
 * not one of NIH's labels; it is derived where needed (see `alignDataset`).
 */
export const NIH_CHEXPERT_ALIGNMENT: readonly LabelAlignment[] = [
  { nih: 'Atelectasis', chexpert: 'Atelectasis', kind: 'same', note: 'same finding' },
  { nih: 'Cardiomegaly', chexpert: 'Cardiomegaly', kind: 'same', note: 'same finding' },
  { nih: 'Effusion', chexpert: 'Pleural Effusion', kind: 'same', note: 'NIH "Effusion" means pleural effusion' },
  { nih: 'Pneumonia', chexpert: 'Pneumonia', kind: 'same', note: 'same finding' },
  { nih: 'Pneumothorax', chexpert: 'Pneumothorax', kind: 'same', note: 'same finding' },
  { nih: 'Consolidation', chexpert: 'Consolidation', kind: 'same', note: 'same finding' },
  { nih: 'Edema', chexpert: 'Edema', kind: 'same', note: 'same finding' },
  { nih: 'Mass', chexpert: 'Lung Lesion', kind: 'narrower', note: 'CheXpert "Lung Lesion" covers masses and nodules' },
  { nih: 'Nodule', chexpert: 'Lung Lesion', kind: 'narrower', note: 'CheXpert "Lung Lesion" covers masses and nodules' },
  {
    nih: 'Infiltration',
    chexpert: 'Lung Opacity',
    kind: 'narrower',
    note: 'CheXpert "Lung Opacity" covers any parenchymal opacity, infiltrates included',
  },
  {
    nih: 'Pleural_Thickening',
    chexpert: 'Pleural Other',
    kind: 'narrower',
    note: 'CheXpert "Pleural Other" covers pleural thickening among other pleural findings',
  },
];
