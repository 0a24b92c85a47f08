/** listImageFiles follows symbolic links in folders (files and, recursively, folders), survives link loops, and lists a dangling link so its error is reported. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { listImageFiles } from '../../src/inference/files.js';

describe('listImageFiles and symbolic links', () => {
  it('follows links to files and folders, skips loops and second ways in, lists dangling image links', () => {
    const root = mkdtempSync(join(tmpdir(), 'cxr-links-'));
    const data = join(root, 'data');
    const scans = join(root, 'scans');
    mkdirSync(join(data, 'sub'), { recursive: true });
    mkdirSync(scans);
    writeFileSync(join(data, 'a.png'), 'x');
    writeFileSync(join(data, 'sub', 'b.dcm'), 'x');
    symlinkSync(join(data, 'a.png'), join(scans, 'linked.png'));
    symlinkSync(join(data, 'sub'), join(scans, 'linked-folder'));
    symlinkSync(scans, join(scans, 'loop'));
    symlinkSync(join(scans, 'linked-folder'), join(scans, 'second-way'));
    symlinkSync(join(data, 'gone.png'), join(scans, 'dangling.png'));
    symlinkSync(join(data, 'a.png'), join(scans, 'notes.txt'));
    assert.deepEqual(listImageFiles([scans]), [join(scans, 'dangling.png'), join(scans, 'linked.png')]);
    assert.deepEqual(listImageFiles([scans], { recursive: true }), [join(scans, 'dangling.png'), join(scans, 'linked-folder', 'b.dcm'), join(scans, 'linked.png')]);
  });
});
