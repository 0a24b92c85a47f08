/**
 * What the input checks report. A check measures a score on one input; a flag is raised when the score is past its
 * threshold (or a DICOM tag says so). Flags with severity `reject` withhold the findings unless the caller asks to
 * see them anyway. Pure types and helpers: the server, the CLI and the browser share them.
 */

export type FlagCode = 'not-chest-xray' | 'lateral-view' | 'inverted' | 'rotated' | 'mirrored' | 'too-small' | 'blank';
export type FlagSeverity = 'info' | 'warning' | 'reject';

export interface InputFlag {
  code: FlagCode;
  severity: FlagSeverity;
  /** The reason, in words a user can act on. */
  message: string;
  /** The measured score, or null for a flag raised by a DICOM tag. */
  score: number | null;
  /** The threshold the score passed, or null for a flag raised by a DICOM tag. */
  threshold: number | null;
  /** How the threshold was chosen, or which tag raised the flag. */
  rule: string;
}

/** One check's measurement on one input, raised or not (for audit and for measuring the detectors). */
export interface InputCheck {
  code: FlagCode;
  score: number;
  threshold: number;
  /** `above`: flagged when score > threshold; `below`: flagged when score < threshold. */
  direction: 'above' | 'below';
  flagged: boolean;
}

/**
 * `accepted`: no flag rejects the input; `rejected`: findings withheld (only the flags and reasons are given);
 * `rejected-shown`: rejected, but the findings were computed on request and must not be trusted.
 */
export type InputVerdict = 'accepted' | 'rejected' | 'rejected-shown';

export function verdictOf(flags: readonly InputFlag[], showRejected: boolean): InputVerdict {
  if (!flags.some((f) => f.severity === 'reject')) return 'accepted';
  return showRejected ? 'rejected-shown' : 'rejected';
}

export function isFlagged(score: number, threshold: number, direction: 'above' | 'below'): boolean {
  return direction === 'above' ? score > threshold : score < threshold;
}
