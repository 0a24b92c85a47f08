/**
 * Training checkpoints: everything a resumed run needs to continue exactly where it stopped (weights, optimizer
 * moments, BatchNorm statistics, the position in the epoch, schedule and early-stopping state, history), in one
 * file: a magic line, a JSON header, then the float32 vectors it names. Written to a temporary file and renamed,
 * so a crash mid-write never leaves a broken checkpoint in place.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

const MAGIC = 'cxr-lens-checkpoint/1\n';

export interface CheckpointHeader {
  [key: string]: unknown;
}

export function writeCheckpoint(path: string, header: CheckpointHeader, vectors: Record<string, Float32Array>): void {
  const layout: Record<string, { offset: number; length: number }> = {};
  let offset = 0;
  for (const [name, data] of Object.entries(vectors)) {
    layout[name] = { offset, length: data.length };
    offset += data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify({ ...header, vectors: layout }));
  const magic = new TextEncoder().encode(MAGIC);
  const prefix = new Uint8Array(magic.length + 4 + json.length);
  prefix.set(magic);
  new DataView(prefix.buffer).setUint32(magic.length, json.length, true);
  prefix.set(json, magic.length + 4);
  // Vectors start on a 4-byte boundary so they can be read without copying.
  const pad = (4 - (prefix.length % 4)) % 4;
  const out = new Uint8Array(prefix.length + pad + offset);
  out.set(prefix);
  let at = prefix.length + pad;
  for (const data of Object.values(vectors)) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    at += data.byteLength;
  }
  const temporary = `${path}.partial`;
  writeFileSync(temporary, out);
  renameSync(temporary, path);
}

export function readCheckpoint(path: string): { header: CheckpointHeader; vectors: Record<string, Float32Array> } {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new Error(`${path}: cannot read the checkpoint (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  const magic = new TextEncoder().encode(MAGIC);
  if (bytes.length < magic.length + 4 || new TextDecoder().decode(bytes.subarray(0, magic.length)) !== MAGIC) {
    throw new Error(`${path}: not a cxr-lens training checkpoint`);
  }
  const jsonLength = new DataView(bytes.buffer, bytes.byteOffset).getUint32(magic.length, true);
  const jsonEnd = magic.length + 4 + jsonLength;
  if (jsonEnd > bytes.length) throw new Error(`${path}: the checkpoint is truncated (header)`);
  let header: CheckpointHeader & { vectors: Record<string, { offset: number; length: number }> };
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(magic.length + 4, jsonEnd)));
  } catch {
    throw new Error(`${path}: the checkpoint's header is corrupt`);
  }
  const start = jsonEnd + ((4 - (jsonEnd % 4)) % 4);
  const vectors: Record<string, Float32Array> = {};
  for (const [name, { offset, length }] of Object.entries(header.vectors)) {
    const from = start + offset;
    if (from + length * 4 > bytes.length) throw new Error(`${path}: the checkpoint is truncated (vector "${name}")`);
    // A copy: Node's Buffer.slice would be a view into a shared pool, not an aligned buffer of its own.
    const copy = new Uint8Array(length * 4);
    copy.set(bytes.subarray(from, from + length * 4));
    vectors[name] = new Float32Array(copy.buffer);
  }
  const { vectors: _layout, ...rest } = header;
  return { header: rest, vectors };
}
