/** Predictions CSVs and their matching with labels: what is accepted, and errors that say where. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCsv } from '../../src/data/csv.js';
import { type LabelledSet, matchPredictions, predictionsToCsv, readPredictionTable } from '../../src/eval/predictions.js';

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

  it('written by predictionsToCsv and read back: every distinct probability stays distinct, verdict and flags survive', () => {
    // Probabilities that agree to 6 decimals (the old format) and the extremes of a double.
    const close = [0.019047593353930074, 0.01904759335393011, 0.019047593353931, 1e-300, 1 - 2 ** -53, 0, 1];
    const csv = predictionsToCsv(['Pneumonia'], [
      ...close.map((p, i) => ({ file: `img${i}.png`, probabilities: [p], verdict: 'accepted' })),
      { file: 'photo, cat.png', probabilities: [0.5], verdict: 'rejected-shown', flags: ['not-chest-xray', 'rotated'] },
      { file: 'dog.png', probabilities: null, verdict: 'rejected', flags: ['not-chest-xray'], error: 'rejected by the input checks: "not a chest X-ray"' },
      { file: 'broken.png', probabilities: null, error: 'broken.png: not a PNG' },
    ]);
    assert.equal(csv.split('\n')[0], 'file,Pneumonia,verdict,flags,error');
    assert.match(csv, /\n"photo, cat\.png",0\.5,rejected-shown,not-chest-xray;rotated,\n/);
    const t = table(csv);
    assert.deepEqual(t.labels, ['Pneumonia']);
    assert.deepEqual([...t.probabilities], [...close, 0.5]);
    assert.equal(new Set(t.probabilities).size, close.length + 1);
    assert.deepEqual(t.rejectedShown, [{ path: 'photo, cat.png', row: 8, flags: ['not-chest-xray', 'rotated'] }]);
    assert.deepEqual(t.failed.map((f) => [f.path, f.error]), [
      ['dog.png', 'rejected by the input checks: "not a chest X-ray"'],
      ['broken.png', 'broken.png: not a PNG'],
    ]);
    // A rejected row without an error text is still not evaluated, and says why.
    assert.deepEqual(table('file,Effusion,verdict,flags,error\na.png,,rejected,blank,\n').failed, [{ path: 'a.png', row: 1, error: 'rejected by the input checks (blank)' }]);
    assert.throws(() => predictionsToCsv(['A', 'B'], [{ file: 'x.png', probabilities: [0.1] }]), /x\.png: 1 probabilities for 2 labels/);
  });

  it('an error column is optional', () => {
    assert.deepEqual(table('file,Effusion\na.png,0.5\n').labels, ['Effusion']);
  });

  it('errors name the file, row, line, column and value', () => {
    assert.throws(() => table('image,Effusion\na.png,0.5\n'), /pred\.csv: no "file" column; .* has the columns file, one probability per label, verdict, flags, error; this one has "image", "Effusion"/);
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
