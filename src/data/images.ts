/** Finding image files on disk for the readers, without decoding them (the cache decodes, and reports bad files). */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const IMAGE_FILE = /\.(png|jpe?g|dcm|dicom)$/i;

/**
 * Indexes image files by name under an NIH-style root: the root itself, `images/`, and `images_001` ..
 * `images_012` (each either holding the images or an `images/` folder, as NIH's archives unpack).
 * A name found in two places is an error: which one was meant cannot be known.
 */
export function indexImageFolder(root: string): Map<string, string> {
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new Error(`${root}: image folder does not exist`);
  const folders = [root];
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    if (entry.name === 'images') folders.push(join(root, entry.name));
    else if (/^images_\d{3}$/.test(entry.name)) {
      const folder = join(root, entry.name);
      folders.push(folder);
      const inner = join(folder, 'images');
      if (existsSync(inner) && statSync(inner).isDirectory()) folders.push(inner);
    }
  }
  const index = new Map<string, string>();
  for (const folder of folders) {
    for (const name of readdirSync(folder)) {
      if (!IMAGE_FILE.test(name)) continue;
      const path = join(folder, name);
      const earlier = index.get(name);
      if (earlier !== undefined) throw new Error(`image "${name}" is in two places: ${earlier} and ${path}`);
      index.set(name, path);
    }
  }
  return index;
}

/** True when `path` is an existing regular file. */
export function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
