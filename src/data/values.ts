/** Parsing of the small field formats the readers share. */
import { LabelState, type LabelStateValue } from './dataset.js';

/** CheXpert-style label cells: 1, 0, -1 (optionally with a ".0" decimal), or empty for "not mentioned". */
export function parseLabelCell(text: string): LabelStateValue | undefined {
  const value = text.trim();
  if (value === '') return LabelState.blank;
  const match = /^(-?1|-?0)(\.0*)?$/.exec(value);
  if (!match) return undefined;
  return match[1] === '1' ? LabelState.positive : match[1] === '-1' ? LabelState.uncertain : LabelState.negative;
}

/** NIH ages: "058Y" (2017 file), "58" (v2020 file), "013M" months, "001D" days; in years. */
export function parseNihAge(text: string): number | undefined {
  const match = /^(\d+)([YMD]?)$/.exec(text.trim());
  if (!match) return undefined;
  const amount = Number(match[1]);
  return match[2] === 'M' ? amount / 12 : match[2] === 'D' ? amount / 365 : amount;
}

/** "M"/"F" and CheXpert's "Male"/"Female"; "Unknown" or empty gives undefined; anything else is an error. */
export function parseSex(text: string): 'M' | 'F' | undefined | null {
  const value = text.trim().toLowerCase();
  if (value === 'm' || value === 'male') return 'M';
  if (value === 'f' || value === 'female') return 'F';
  if (value === '' || value === 'unknown' || value === 'u') return undefined;
  return null;
}

/** A finite number, or undefined for an empty cell, or null when the cell is not a number. */
export function parseOptionalNumber(text: string | undefined): number | undefined | null {
  const value = (text ?? '').trim();
  if (value === '') return undefined;
  const number = Number(value);
  return Number.isFinite(number) ? number : null;
}
