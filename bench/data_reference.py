"""Side-by-side reference for bench/data.ts: the same work done with Python, PIL and NumPy.

Run with Debian's /usr/bin/python3. Each call does one timed round and prints JSON {"ms": ...}; imports and
process start-up are outside the timing. With `serve` it stays running and takes one call per stdin line (a JSON
list: the mode and its arguments), answering each with one JSON line: the benchmark starts it once, so no process
is started (forked from ours) between timed rounds.

  decode  SIZE MEAN STD CHANNELS PATH...   PIL decode, convert('L'), resize(SIZE, BILINEAR), /255, (x-mean)/std, C copies
  cache   BIN COUNT SIZE MEAN STD CHANNELS read a cache file of COUNT uint8 SIZExSIZE images with NumPy, normalise each
  pool    SIZE OUT PATH...                 2 processes: PIL decode + resize to uint8, written into one file OUT
  csv     PATH                             csv module: Data_Entry rows -> [N, 14] label matrix + patient ids
  dump    SIZE OUT PATH                    write PIL's uint8 SIZExSIZE pixels of one image to OUT (for the equality check)
"""
import csv
import json
import sys
import time
from multiprocessing import Pool

import numpy as np
from PIL import Image

FINDINGS = ['Atelectasis', 'Cardiomegaly', 'Effusion', 'Infiltration', 'Mass', 'Nodule', 'Pneumonia', 'Pneumothorax',
            'Consolidation', 'Edema', 'Emphysema', 'Fibrosis', 'Pleural_Thickening', 'Hernia']


def model_pixels(path, size):
    # NIH's originals are square, so scaling the longer side to fit (our 'pad') is a plain resize here.
    with Image.open(path) as image:
        return np.asarray(image.convert('L').resize((size, size), Image.BILINEAR))


def normalise(pixels, mean, std, channels):
    plane = (pixels.astype(np.float32) / 255.0 - mean) / std
    return np.repeat(plane[None], channels, axis=0)


def decode(args):
    size, mean, std, channels = int(args[0]), float(args[1]), float(args[2]), int(args[3])
    start = time.perf_counter()
    checksum = 0.0
    for path in args[4:]:
        checksum += float(normalise(model_pixels(path, size), mean, std, channels)[0, 0, 0])
    return {'ms': (time.perf_counter() - start) * 1000, 'checksum': checksum}


def cache(args):
    path, count, size = args[0], int(args[1]), int(args[2])
    mean, std, channels = float(args[3]), float(args[4]), int(args[5])
    start = time.perf_counter()
    images = np.fromfile(path, dtype=np.uint8, count=count * size * size).reshape(count, size, size)
    checksum = 0.0
    for pixels in images:
        checksum += float(normalise(pixels, mean, std, channels)[0, 0, 0])
    return {'ms': (time.perf_counter() - start) * 1000, 'checksum': checksum}


def _pool_task(job):
    return job[0], model_pixels(job[1], job[2]).tobytes()


def pool(args):
    size, out, paths = int(args[0]), args[1], args[2:]
    start = time.perf_counter()
    with open(out, 'wb') as handle, Pool(2) as workers:
        handle.truncate(len(paths) * size * size)
        for slot, data in workers.imap_unordered(_pool_task, [(i, p, size) for i, p in enumerate(paths)]):
            handle.seek(slot * size * size)
            handle.write(data)
    return {'ms': (time.perf_counter() - start) * 1000}


def read_csv(args):
    start = time.perf_counter()
    with open(args[0], newline='') as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    image, findings = header.index('Image Index'), header.index('Finding Labels')
    index = {name: j for j, name in enumerate(FINDINGS)}
    labels = np.zeros((len(rows) - 1, len(FINDINGS)), dtype=np.float32)
    patients = []
    for i, row in enumerate(rows[1:]):
        patients.append(row[image][:8])
        if row[findings] != 'No Finding':
            for name in row[findings].split('|'):
                labels[i, index[name]] = 1
    return {'ms': (time.perf_counter() - start) * 1000, 'rows': len(patients)}


def dump(args):
    size, out, path = int(args[0]), args[1], args[2]
    model_pixels(path, size).tofile(out)
    return {'ms': 0}


MODES = {'decode': decode, 'cache': cache, 'pool': pool, 'csv': read_csv, 'dump': dump}


def serve():
    for line in sys.stdin:
        call = json.loads(line)
        try:
            reply = MODES[call[0]](call[1:])
        except Exception as error:  # reported to the benchmark, which stops
            reply = {'error': f'{type(error).__name__}: {error}'}
        print(json.dumps(reply), flush=True)


if __name__ == '__main__':
    if sys.argv[1] == 'serve':
        serve()
    else:
        print(json.dumps(MODES[sys.argv[1]](sys.argv[2:])))
