/** Predictions CSVs and their matching with labels: what is accepted, and errors that say where. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCsv } from '../../src/data/csv.js';
import { type LabelledSet, matchPredictions, readPredictionTable } from '../../src/eval/predictions.js';

const table = (text: string) => readPredictionTable(parseCsv(text, 'pred.csv'));

describe('readPredictionTable', () => {
  it('reads cxr predict --csv output: probabilities per label, failed images apart', () => {
    const t = table('file,Effusion,Mass,error\nscans/a.png,0.25,0.000001,\nscans/b.png,,,"b.png: not a PNG, JPEG or DICOM file"\nc.png,1,0,\n');
    assert.deepEqual(t.labels, ['Effusion', 'Mass']);
    assert.deepEqual(t.paths, ['scans/a.png', 'c.png']);
    assert.deepEqual(t.rows, [1, 3]);
    assert.deepEqual([...t.probabilities], [0.25, 0.000001, 1, 0]);
    assert.deepEqual(t.failed, [{ path: 'scans/b.png', row: 2, error: 'b.png: not a PNG, JPEG or DICOM file' }]);
  });

  it('an error column is optional', () => {
    assert.deepEqual(table('file,Effusion\na.png,0.5\n').labels, ['Effusion']);
  });

  it('errors name the file, row, line, column and value', () => {
    assert.throws(() => table('image,Effusion\na.png,0.5\n'), /pred\.csv: no "file" column; .* has the columns file, one probability per label, error; this one has "image", "Effusion"/);
    assert.throws(() => table('file,error\na.png,\n'), /pred\.csv: no probability columns/);
    assert.throws(() => table('file,Effusion,error\na.png,0.5,\nb.png,high,\n'), /pred\.csv, row 2 \(line 3\), column "Effusion", value "high": not a number/);
    assert.throws(() => table('file,Effusion,error\na.png,1.2,\n'), /row 1 \(line 2\), column "Effusion", value "1\.2": probability outside \[0, 1\]/);
    assert.throws(() => table('file,Effusion,error\na.png,-0.1,\n'), /probability outside \[0, 1\]/);
    assert.throws(() => table('file,Effusion,error\na.png,,\n'), /column "Effusion", value "": empty probability \(and no error given for the image\)/);
    assert.throws(() => table('file,Effusion,error\na.png,0x1,\n'), /value "0x1": not a number/);
    assert.throws(() => table('file,Effusion,error\na.png,0.5\n'), /pred\.csv, row 1 \(line 2\): 2 fields, but the header has 3 columns/);
    assert.throws(() => table('file,Effusion,error\n ,0.5,\n'), /row 1 \(line 2\), column "file", value " ": empty image path/);
  });
});

const nihLabels: LabelledSet = {
  file: 'Data_Entry.csv',
  labels: ['Effusion', 'Mass', 'Hernia'],
  samples: [
    { id: '00000001_000.png', targets: [1, 0, 0], cluster: '00000001' },
    { id: '00000001_001.png', targets: [0, 1, 0], cluster: '00000001' },
    { id: '00000002_000.png', targets: [0, 0, 0], mask: [1, 0, 1], cluster: '00000002' },
  ],
};

describe('matchPredictions', () => {
  it('matches by the trailing path, keeps prediction order, carries masks and patients, reports unmatched labels', () => {
    const t = table('file,Mass,Effusion,error\n/data/nih/images/00000002_000.png,0.2,0.3,\nimages\\00000001_000.png,0.4,0.9,\n');
    const m = matchPredictions(t, nihLabels);
    assert.deepEqual(m.input.labels, ['Mass', 'Effusion']);
    assert.deepEqual(m.input.ids, ['00000002_000.png', '00000001_000.png']);
    assert.deepEqual(Array.from(m.input.probabilities), [0.2, 0.3, 0.4, 0.9]);
    assert.deepEqual(Array.from(m.input.targets), [0, 0, 0, 1]);
    assert.deepEqual(Array.from(m.input.mask!), [0, 1, 1, 1]);
    assert.deepEqual(m.input.clusters, ['00000002', '00000001']);
    assert.deepEqual(m.labelsWithoutPredictions, ['00000001_001.png']);
    assert.deepEqual(m.labelsNotPredicted, ['Hernia']);
  });

  it('CheXpert-style relative paths: the longest shared trailing part decides', () => {
    const labelled: LabelledSet = {
      file: 'valid.csv',
      labels: ['Edema'],
      samples: [
        { id: 'CheXpert-v1.0/valid/patient1/study1/view1_frontal.jpg', targets: [1] },
        { id: 'CheXpert-v1.0/valid/patient2/study1/view1_frontal.jpg', targets: [0] },
      ],
    };
    const m = matchPredictions(table('file,Edema,error\n/mnt/x/valid/patient2/study1/view1_frontal.jpg,0.1,\n'), labelled);
    assert.deepEqual(m.input.ids, ['CheXpert-v1.0/valid/patient2/study1/view1_frontal.jpg']);
    assert.throws(() => matchPredictions(table('file,Edema,error\nelsewhere/view1_frontal.jpg,0.1,\n'), labelled), /pred\.csv, row 1: "elsewhere\/view1_frontal\.jpg": "view1_frontal\.jpg" names several labelled images/);
  });

  it('predicted images without labels are an error listing them (the first ten, then a count)', () => {
    const rows = Array.from({ length: 13 }, (_, i) => `extra_${i}.png,0.5,`).join('\n');
    assert.throws(() => matchPredictions(table(`file,Mass,error\n00000001_000.png,0.5,\n${rows}\n`), nihLabels), (error: Error) => {
      assert.match(error.message, /pred\.csv: 13 predicted images have no labels in Data_Entry\.csv:\n  extra_0\.png\n/);
      assert.match(error.message, /  extra_9\.png\n  \.\.\. and 3 more$/);
      return true;
    });
  });

  it('unknown labels, two rows for one image, and nothing to evaluate are errors', () => {
    assert.throws(() => matchPredictions(table('file,Mass,Fracture,error\n00000001_000.png,0.5,0.1,\n'), nihLabels), /pred\.csv: label "Fracture" not in Data_Entry\.csv, whose labels are Effusion, Mass, Hernia/);
    assert.throws(() => matchPredictions(table('file,Mass,error\na/00000001_000.png,0.5,\nb/00000001_000.png,0.4,\n'), nihLabels), /rows 1 and 2 are both predictions for "00000001_000\.png" of Data_Entry\.csv/);
    assert.throws(() => matchPredictions(table('file,Mass,error\n00000001_000.png,,broken\n'), nihLabels), /pred\.csv: no predicted image to evaluate/);
  });
});
