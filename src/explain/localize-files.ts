/** Finding the images that NIH's box list covers in local folders, and reading them for a localisation run (Node). */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Box } from '../data/dataset.js';
import { readNihBoxes } from '../data/nih.js';
import { decodeImageFile } from '../imaging/index.js';
import type { BoxedImage } from './localize-eval.js';

export interface BoxedImageFile {
  name: string;
  path: string;
  boxes: Box[];
}

/**
 * The files in `folders` (not recursive) whose names are in the box list, each with its boxes. An image found in
 * several folders is taken from the first (list the full-resolution folder first).
 */
export async function boxedImageFiles(boxesCsv: string, folders: readonly string[]): Promise<BoxedImageFile[]> {
  const boxes = await readNihBoxes(boxesCsv);
  const found = new Map<string, BoxedImageFile>();
  for (const folder of folders) {
    if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new Error(`${folder}: not a folder of images`);
    for (const name of readdirSync(folder).sort()) {
      const list = boxes.get(name);
      if (list && !found.has(name)) found.set(name, { name, path: join(folder, name), boxes: list });
    }
  }
  return [...found.values()];
}

/** Decodes the files; a file that cannot be read fails naming it. */
export async function readBoxedImages(files: readonly BoxedImageFile[]): Promise<BoxedImage[]> {
  const out: BoxedImage[] = [];
  for (const file of files) out.push({ name: file.name, image: await decodeImageFile(file.path), boxes: file.boxes });
  return out;
}
