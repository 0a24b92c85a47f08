/**
 * UIDs. Every UID cxr-lens writes into the PACS is derived from what it describes (the source instance, the model
 * file's hash, the kind of object), under the UUID-derived root 2.25 (PS3.5 B.2): a rerun writes the very same
 * UIDs, so the PACS keeps one copy however often a crashed run is resumed, and whether an instance is done can be
 * asked of the PACS by the UID its result would have.
 */
import { createHash } from 'node:crypto';

/** 2.25.<128 bits of SHA-256 of the parts, as a decimal integer>: at most 44 characters. */
export function derivedUid(...parts: string[]): string {
  const digest = createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 32);
  return `2.25.${BigInt(`0x${digest}`).toString(10)}`;
}

/** A short, one-way name for a UID in logs (UIDs can lead back to a patient; their hash cannot). */
export function uidTag(uid: string): string {
  return createHash('sha256').update(uid).digest('hex').slice(0, 10);
}

/** cxr-lens's implementation class UID (file meta), fixed for the software. */
export const IMPLEMENTATION_CLASS_UID = derivedUid('cxr-lens', 'implementation class');
