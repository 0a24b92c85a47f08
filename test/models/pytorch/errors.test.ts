import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import {
  CheckpointError,
  type CheckpointErrorReason,
  readPytorchCheckpoint,
} from '../../../src/models/import/pytorch/index.js';
import { fixture, sharedData } from './fixtures.js';
import { PickleWriter, oneTensorPickle, zipCheckpoint } from './pickle-writer.js';

function assertRefused(bytes: Uint8Array, fileName: string, reason: CheckpointErrorReason, message: RegExp): void {
  assert.throws(
    () => readPytorchCheckpoint(bytes, fileName),
    (error: unknown) => {
      assert.ok(error instanceof CheckpointError, `expected a CheckpointError, got ${String(error)}`);
      assert.equal(error.reason, reason, error.message);
      assert.ok(error.message.startsWith(`${fileName}: `), error.message);
      assert.match(error.message, message);
      return true;
    },
  );
}

const floats = (...values: number[]) => new Uint8Array(Float32Array.from(values).buffer);

describe('truncated checkpoints', () => {
  it('refuses a zip checkpoint cut in half', () => {
    const whole = fixture('densenet_tiny.pth');
    assertRefused(whole.subarray(0, whole.length >> 1), 'half.pth', 'truncated', /zip archive .* end is missing .* truncated/);
  });

  it('refuses a legacy checkpoint cut inside its pickle', () => {
    const whole = fixture('densenet_tiny_legacy.pth.tar');
    assertRefused(whole.subarray(0, 400), 'cut.pth.tar', 'truncated', /the pickled checkpoint: the data ends inside a pickle/);
  });

  it('refuses a legacy checkpoint cut inside its tensor data, naming the storage', () => {
    const whole = fixture('densenet_tiny_legacy.pth.tar');
    assertRefused(whole.subarray(0, whole.length - 100), 'cut.pth.tar', 'truncated', /ends inside storage \d+ of \d+ .* truncated/);
    assertRefused(whole.subarray(0, whole.length - 1), 'cut.pth.tar', 'truncated', /ends inside storage (\d+) of \1 /);
  });
});

describe('files that are not checkpoints', () => {
  it('says a chest X-ray PNG is a PNG image', () => {
    const png = sharedData('nih-cxr14-subset/images/00000075_000.png');
    assertRefused(png, '00000075_000.png', 'not-a-checkpoint', /not a PyTorch checkpoint: it looks like a PNG image/);
  });

  it('says an ONNX model is an ONNX model', () => {
    const onnx = sharedData('weights/mobilenetv2-12-int8.onnx');
    assertRefused(onnx, 'mobilenetv2.pth', 'not-a-checkpoint', /an ONNX model, not a PyTorch checkpoint/);
  });

  it('says a DICOM file is a DICOM file', () => {
    const dicom = sharedData('dicom/cxr02_CR_chest_PA_MONO1_15bit_J2K_lossy_RG1.dcm');
    assertRefused(dicom, 'scan.pth', 'not-a-checkpoint', /a DICOM file/);
  });

  it('names empty files, text, Git LFS pointers and unknown bytes', () => {
    assertRefused(new Uint8Array(0), 'empty.pth', 'not-a-checkpoint', /an empty file/);
    const text = new TextEncoder().encode('<!DOCTYPE html>\n<html><body>Not Found</body></html>\n');
    assertRefused(text, 'page.pth', 'not-a-checkpoint', /text starting "<!DOCTYPE html>"/);
    const lfs = new TextEncoder().encode('version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 32\n');
    assertRefused(lfs, 'lfs.pth', 'not-a-checkpoint', /Git LFS pointer/);
    assertRefused(Uint8Array.of(0, 1, 2, 3, 250, 251), 'noise.pth', 'not-a-checkpoint', /first bytes 00 01 02 03 fa fb/);
  });

  it('says a plain pickle was not written by torch.save', () => {
    const pickle = new PickleWriter().proto().emptyDict().stop().bytes();
    assertRefused(pickle, 'dict.pkl', 'not-a-checkpoint', /a Python pickle, but not one written by torch\.save/);
  });

  it('says a zip without data.pkl is not a torch.save archive, listing its entries', () => {
    const zip = zipSync({ 'weights.npy': Uint8Array.of(1), 'README.txt': Uint8Array.of(2) });
    assertRefused(zip, 'weights.zip', 'not-a-checkpoint', /zip archive without data\.pkl, so not written by torch\.save \(entries: weights\.npy, README\.txt/);
  });

  it('says a TorchScript archive is TorchScript', () => {
    assertRefused(fixture('torchscript_linear.pt'), 'scripted.pt', 'torchscript', /TorchScript model .*state_dict\(\)/);
  });
});

describe('checkpoints that hold something other than weights', () => {
  it('refuses a whole pickled model of a class it does not know, naming the class', () => {
    assertRefused(
      fixture('ecosystem/unknown_module_class.pth'),
      'mine.pth',
      'whole-module',
      /whole model object of class model\.CheXNetPlus, which this reader does not know: .*never runs code .*torch\.save\(model\.state_dict\(\)/,
    );
  });

  it('refuses a known model class whose pickle also calls builtins.eval, naming eval', () => {
    assertRefused(fixture('ecosystem/module_with_eval.pth'), 'linear.pth', 'unknown-global', /Python global __builtin__\.eval,.*never runs code/);
  });

  it('runs nothing a whole-module pickle asks for: an os.system call inside a known module is refused and never happens', () => {
    const marker = join(mkdtempSync(join(tmpdir(), 'cxr-pickle-')), 'ran');
    // A Linear module whose state holds os.system('touch <marker>'): unpickling it in Python would create the file.
    const pickle = new PickleWriter()
      .proto()
      .global('torch.nn.modules.linear', 'Linear')
      .op(0x29, 0x81) // EMPTY_TUPLE, NEWOBJ
      .emptyDict()
      .mark()
      .str('hook')
      .global('os', 'system')
      .mark()
      .str(`touch ${marker}`)
      .tuple()
      .reduce()
      .setitems()
      .op(0x62) // BUILD
      .stop()
      .bytes();
    assertRefused(zipCheckpoint(pickle, {}), 'hooked.pth', 'unknown-global', /Python global os\.system,/);
    assert.equal(existsSync(marker), false);
  });

  it('names an unknown global and does not rebuild it', () => {
    assertRefused(fixture('unknown_global.pth'), 'u.pth', 'unknown-global', /Python global argparse\.Namespace,/);
  });

  it('refuses a pickle that would run a shell command in Python, naming os.system', () => {
    assertRefused(fixture('malicious_reduce.pth'), 'evil.pth', 'unknown-global', /Python global posix\.system,.*never runs code/);
  });

  it('refuses an empty dict', () => {
    assertRefused(fixture('empty_dict.pth'), 'empty_dict.pth', 'no-weights', /an empty dict: it holds no weights/);
  });

  it('refuses a single tensor and a dict without tensors, saying what they are', () => {
    const tensorOnly = new PickleWriter().proto().tensor('FloatStorage', '0', 2, 0, [2], [1]).stop().bytes();
    assertRefused(zipCheckpoint(tensorOnly, { 0: floats(1, 2) }), 't.pth', 'no-weights', /a tensor of shape \[2\], not a dict/);
    const noTensors = new PickleWriter().proto().emptyDict().mark().str('epoch').int(3).setitems().stop().bytes();
    assertRefused(zipCheckpoint(noTensors, {}), 'e.pth', 'no-weights', /no state dict found: .*epoch \(the number 3\)/);
  });

  it('says which entry is not a state dict when the caller names one', () => {
    assert.throws(
      () => readPytorchCheckpoint(fixture('wrapped_model.pth'), 'w.pth', { entry: 'epoch' }),
      /w\.pth: entry 'epoch' is not a state dict: it is the number 12/,
    );
    assert.throws(
      () => readPytorchCheckpoint(fixture('wrapped_model.pth'), 'w.pth', { entry: 'weights' }),
      /no entry 'weights' \(it has: model, epoch\)/,
    );
  });
});

describe('damaged or unsupported tensor data', () => {
  it('refuses a tensor that reads past its storage', () => {
    const zip = zipCheckpoint(oneTensorPickle('FloatStorage', 2, [3], [1]), { 0: floats(1, 2) });
    assertRefused(zip, 'past.pth', 'malformed', /tensor 'w' of shape \[3\] reads element 2 of a storage of 2 elements/);
    const strided = zipCheckpoint(oneTensorPickle('FloatStorage', 6, [2, 2], [1, 5]), { 0: floats(1, 2, 3, 4, 5, 6) });
    assertRefused(strided, 'strided.pth', 'malformed', /tensor 'w' of shape \[2, 2\] reads element 6 of a storage of 6/);
  });

  it('refuses a zero-stride tensor too large to allocate', () => {
    const zip = zipCheckpoint(oneTensorPickle('FloatStorage', 1, [65536, 65536], [0, 0]), { 0: floats(1) });
    assertRefused(zip, 'huge.pth', 'malformed', /tensor 'w' of shape \[65536, 65536\] is too large to load/);
  });

  it('refuses a storage entry shorter than the pickle says', () => {
    const zip = zipCheckpoint(oneTensorPickle('FloatStorage', 4, [2], [1]), { 0: floats(1, 2) });
    assertRefused(zip, 'short.pth', 'malformed', /storage '0' .* should hold 4 float32 elements \(16 bytes\) but has 8 bytes/);
  });

  it('refuses an archive that lacks a storage entry', () => {
    const zip = zipCheckpoint(oneTensorPickle('FloatStorage', 2, [2], [1]), {});
    assertRefused(zip, 'lacking.pth', 'malformed', /lacks archive\/data\/0, the data of storage '0'/);
  });

  it('refuses complex tensors and big-endian archives as unsupported', () => {
    const complex = zipCheckpoint(oneTensorPickle('ComplexFloatStorage', 1, [1], [1]), { 0: floats(1, 2) });
    assertRefused(complex, 'c.pth', 'unsupported', /storage type torch\.ComplexFloatStorage are not supported/);
    const bigEndian = zipCheckpoint(oneTensorPickle('FloatStorage', 1, [1], [1]), { 0: floats(1) }, {
      'archive/byteorder': new TextEncoder().encode('big'),
    });
    assertRefused(bigEndian, 'be.pth', 'unsupported', /big-endian/);
  });
});
