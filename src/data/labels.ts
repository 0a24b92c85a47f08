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
