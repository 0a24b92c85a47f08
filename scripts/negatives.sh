#!/usr/bin/env bash
# Real negative images for the input checks (issue 15): things that are NOT frontal chest X-rays, taken from
# Debian (bookworm) packages and grouped by kind, so that the checks can be fitted on some kinds and measured on
# held-out kinds. Nothing is copied into the repository: the images stay where Debian installs them, and the few
# derived files (PDF pages, slices of NIfTI volumes) plus the files of packages that are only unpacked (their
# dependencies are too heavy to install) go into the cache folder.
#
#   bash scripts/negatives.sh [CACHE]     # default CACHE: ../.cache/cxr-lens/negatives beside the checkout
#
# Writes CACHE/manifest.csv with columns kind,path (absolute paths). Each kind is capped at 150 files chosen
# deterministically (sorted paths, evenly spaced); files under 64 px on a side and duplicates (same bytes, or the
# same picture at another size) are skipped. Only PNG, JPEG and DICOM files are listed (the formats cxr-lens
# decodes). DICOMs are classified by their Modality and Body Part tags; a human chest CR/DX, should one appear,
# is listed as `POSITIVE chest radiograph`, never as a negative. When dist/src/imaging/decode.js exists (after
# `npx tsc -p .`), every listed file is decoded with cxr-lens's own decoder and any that fails moves to the kind
# `undecodable` (in .ci/run it runs before the build, so readers of the manifest must expect decode errors
# there: colour and multi-frame DICOMs, 1-bit segmentations). Idempotent: installed packages, unpacked packages and rendered files are reused. A package that
# cannot be installed is warned about and its kinds shrink; the script does not fail for it.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${1:-$REPO/../.cache/cxr-lens/negatives}
mkdir -p "$CACHE" && CACHE=$(cd "$CACHE" && pwd)
case "$CACHE/" in "$REPO"/*) echo "negatives.sh: the cache ($CACHE) must be outside the repository" >&2; exit 2 ;; esac
warn() { echo "negatives.sh: warning: $*" >&2; }
SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo "sudo")

# Installed: data packages with light dependencies, and the tools that read or render them.
INSTALL=(
  desktop-base gnome-backgrounds mate-backgrounds plasma-workspace-wallpapers  # desktop backgrounds
  gimp-help-en                      # photographs (the manual's filter examples) and screenshots (its dialogs)
  fotoxx-common                     # texture/pattern photographs
  openclipart-png                   # clip-art
  oxygen-icon-theme                 # icons, 256x256 PNG
  golang-github-jung-kurt-gofpdf-dev r-doc-pdf  # PDF documents, rendered to PNG pages
  insighttoolkit5-examples          # MR slices (BrainWeb/proton density/T1 PNGs), Visible Woman cryosections
  python3-pydicom                   # DICOM test files (CT, MR, NM, US, secondary captures) and the tag reader
  python3-nibabel                   # DICOM MR test files and NIfTI MR volumes (slices rendered to PNG)
  dicomnifti libgdcm3.0             # one MR DICOM; one multi-frame XA (angiography) DICOM
  python3-numpy python3-pil poppler-utils
)
# Unpacked only (apt-get download + dpkg-deb -x into CACHE/debs): their dependencies (Octave, Qt, scikit-image's
# SciPy stack, nipype) would cost far more than the handful of images they carry.
UNPACK=(
  python3-skimage                   # skimage.data photographs, fundus and microscopy images
  octave-dicom                      # CT ankle, echocardiogram (US, palette colour), secondary captures
  heudiconv                         # MR DICOMs (Siemens scouts, diffusion)
  python3-guiqwt                    # an MR brain DICOM
)

missing=()
for p in "${INSTALL[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
updated=0
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq || warn "apt-get update failed"
  updated=1
  if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    for p in "${missing[@]}"; do   # one at a time, so that one missing package costs only its own images
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$p" >/dev/null \
        || warn "cannot install $p: its images are left out"
    done
  fi
fi
mkdir -p "$CACHE/debs"
for p in "${UNPACK[@]}"; do
  [ -f "$CACHE/debs/$p/.done" ] && continue
  tmp=$(mktemp -d)
  if (cd "$tmp" && apt-get download -qq "$p" >/dev/null 2>&1) ||
     { [ "$updated" -eq 0 ] && $SUDO apt-get update -qq && updated=1 && (cd "$tmp" && apt-get download -qq "$p" >/dev/null 2>&1); }; then
    rm -rf "$CACHE/debs/$p" && mkdir -p "$CACHE/debs/$p" && dpkg-deb -x "$tmp"/*.deb "$CACHE/debs/$p" && touch "$CACHE/debs/$p/.done" \
      || warn "cannot unpack $p"
  else
    warn "cannot download $p: its images are left out"
  fi
  rm -rf "$tmp"
done

# Collect, classify, render, dedupe and cap. Debian's own Python, which has the packages installed above.
if ! /usr/bin/python3 -c 'import numpy, PIL, pydicom' 2>/dev/null; then
  warn "Debian's python3 with numpy, PIL and pydicom is missing: no manifest written"; exit 0
fi
/usr/bin/python3 - "$CACHE" <<'PY' || { warn "building the manifest failed"; exit 0; }
import glob, hashlib, os, re, subprocess, sys, warnings
import numpy as np
from PIL import Image
warnings.filterwarnings('ignore')
import pydicom

CACHE = sys.argv[1]
CAP, MIN_SIDE = 150, 64
DEBS = os.path.join(CACHE, 'debs')
RENDER = os.path.join(CACHE, 'rendered')
os.makedirs(RENDER, exist_ok=True)
Image.MAX_IMAGE_PIXELS = None

def files(*patterns):
    out = set()
    for p in patterns:
        out.update(f for f in glob.glob(p, recursive=True) if os.path.isfile(f) and not os.path.islink(f))
    return sorted(out)

def raster_ok(path):
    """A PNG/JPEG at least MIN_SIDE on a side; returns a small fingerprint of the picture or None."""
    try:
        with open(path, 'rb') as f:
            head = f.read(8)
        if not (head.startswith(b'\x89PNG') or head.startswith(b'\xff\xd8')):
            return None
        with Image.open(path) as im:
            if min(im.size) < MIN_SIDE:
                return None
            im.draft('L', (64, 64))
            if im.mode in ('RGBA', 'LA', 'PA') or (im.mode == 'P' and 'transparency' in im.info):
                rgba = im.convert('RGBA')   # transparent parts count as white, as on a page
                im = Image.alpha_composite(Image.new('RGBA', rgba.size, (255, 255, 255, 255)), rgba)
            g = im.convert('L').resize((16, 16), Image.BILINEAR)
        return bytes(np.asarray(g, dtype=np.uint8) >> 4)
    except Exception:
        return None

seen_bytes = set()
def unique_bytes(path):
    h = hashlib.sha256(open(path, 'rb').read()).hexdigest()
    if h in seen_bytes:
        return False
    seen_bytes.add(h)
    return True

def pick(cands, accept):
    """Up to CAP accepted candidates, evenly spaced over the sorted list: from each of CAP equal strides the
    first acceptable one (so rejected files are replaced by their neighbours)."""
    n = len(cands)
    if n == 0:
        return []
    strides = min(CAP, n)
    chosen = []
    for i in range(strides):
        lo, hi = (i * n) // strides, ((i + 1) * n) // strides
        for j in range(lo, hi):
            r = accept(cands[j])
            if r:
                chosen.append(r)
                break
    return chosen

def raster_kind(cands):
    prints = set()
    def accept(path):
        fp = raster_ok(path)
        if fp is None or fp in prints or not unique_bytes(path):
            return None
        prints.add(fp)
        return path
    return pick(cands, accept)

manifest = {}
def add(kind, paths):
    if paths:
        manifest.setdefault(kind, []).extend(paths)

# --- photographs, backgrounds, textures, drawings, icons, screenshots -----------------------------------------
SK = DEBS + '/python3-skimage/usr/lib/python3/dist-packages/skimage/data/'
photos_sk = [SK + n for n in ('astronaut.png', 'camera.png', 'chelsea.png', 'coffee.png', 'coins.png', 'moon.png',
             'hubble_deep_field.jpg', 'motorcycle_left.png', 'rocket.jpg', 'grass.png', 'gravel.png', 'brick.png')]
gimp = '/usr/share/gimp/2.0/help/en/images/'
add('photograph', raster_kind(sorted(p for p in photos_sk if os.path.isfile(p)) +
                              files(gimp + 'filters/examples/**/*.jpg', gimp + 'tutorials/**/*.jpg')))
add('medical photograph (fundus/microscopy/cryosection)', raster_kind(
    [p for p in (SK + n for n in ('retina.jpg', 'microaneurysms.png', 'ihc.png', 'cell.png')) if os.path.isfile(p)] +
    files('/usr/share/doc/insighttoolkit5-examples/examples/Data/VisibleWoman*.png')))

# Wallpapers ship one picture at several resolutions: one file per picture (the largest), then the fingerprint
# catches the rest.
def one_per_folder(paths):
    best = {}
    for p in paths:
        key = os.path.dirname(p)
        if '/contents/images' not in key:   # elsewhere: Name.jpg and Name_3840x2160.jpg are one picture
            key = re.sub(r'[_-]?\d{3,5}x\d{3,5}(?=\.[a-z]+$)', '', p)
        if key not in best or os.path.getsize(p) > os.path.getsize(best[key]):
            best[key] = p
    return sorted(best.values())
bg = files('/usr/share/backgrounds/**/*.jpg', '/usr/share/backgrounds/**/*.png', '/usr/share/backgrounds/**/*.jpeg',
           '/usr/share/wallpapers/**/*.jpg', '/usr/share/wallpapers/**/*.png', '/usr/share/wallpapers/**/*.jpeg',
           '/usr/share/desktop-base/**/*.png', '/usr/share/desktop-base/**/*.jpg')
bg = [p for p in bg if 'screenshot' not in p.lower() and                # desktop-base: only its wallpapers and
      (not p.startswith('/usr/share/desktop-base/') or '/wallpaper/' in p or '/login/' in p)]  # login screens
add('desktop background', raster_kind(one_per_folder(bg)))
add('texture/pattern', raster_kind(files('/usr/share/fotoxx/data/patterns/*')))
add('drawing/clip-art', raster_kind(files('/usr/share/openclipart/png/**/*.png')))
add('icon', raster_kind(files('/usr/share/icons/oxygen/base/256x256/**/*.png')))
add('screenshot', raster_kind([p for p in files(gimp + '**/*.png')
                               if any(s in p for s in ('/dialogs/', '/menus/', '/toolbox/', '/using/', '/preferences/', '/glossary/'))]))

# --- document pages: PDF pages rendered to PNG (about 60 dpi) --------------------------------------------------
def pdf_pages(pdf, most):
    try:
        info = subprocess.run(['pdfinfo', pdf], capture_output=True, text=True, timeout=60).stdout
        n = int(next(l.split()[-1] for l in info.splitlines() if l.startswith('Pages:')))
    except Exception:
        return []
    k = min(most, n)
    return sorted({1 + (i * n) // k for i in range(k)})
def render_page(unit):
    pdf, page = unit
    stem = hashlib.sha1(pdf.encode()).hexdigest()[:10] + '-' + os.path.basename(pdf)[:-4] + f'-p{page}'
    out = os.path.join(RENDER, 'pdf', stem + '.png')
    if not os.path.isfile(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        subprocess.run(['pdftoppm', '-q', '-png', '-r', '60', '-f', str(page), '-l', str(page), '-singlefile', pdf, out[:-4]],
                       timeout=120)
    return out if os.path.isfile(out) else None
units = [(pdf, pg) for pdf in files('/usr/share/gocode/src/github.com/jung-kurt/gofpdf/**/*.pdf') for pg in pdf_pages(pdf, 2)]
units += [(pdf, pg) for pdf in files('/usr/share/R/doc/manual/*.pdf', '/usr/share/doc/r-doc-pdf/**/*.pdf') for pg in pdf_pages(pdf, 8)]
prints_doc = set()
def accept_page(unit):
    out = render_page(unit)
    fp = out and raster_ok(out)
    if not fp or fp in prints_doc or not unique_bytes(out):
        return None
    prints_doc.add(fp)
    return out
add('document page', pick(units, accept_page))

# --- medical: DICOM test files by their tags -------------------------------------------------------------------
def dicom_kind(path):
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception:
        return None
    if 'Rows' not in ds or 'Columns' not in ds or min(int(ds.Rows), int(ds.Columns)) < MIN_SIDE:
        return None
    with open(path, 'rb') as f:
        raw = f.read()
    if b'\xe0\x7f\x10\x00' not in raw and b'\x7f\xe0\x00\x10' not in raw:
        return None   # no Pixel Data element
    mod = str(ds.get('Modality', '')).upper()
    body = ' '.join(str(ds.get(k, '')) for k in ('BodyPartExamined', 'StudyDescription', 'SeriesDescription')).upper()
    if mod in ('CR', 'DX', 'DR', 'RG'):
        return 'POSITIVE chest radiograph' if ('CHEST' in body or 'THORAX' in body) else 'other radiograph (non-chest)'
    return {'MR': 'MR', 'CT': 'CT', 'US': 'ultrasound', 'NM': 'nuclear medicine', 'PT': 'nuclear medicine',
            'XA': 'angiography/fluoroscopy', 'RF': 'angiography/fluoroscopy', 'MG': 'mammogram', 'IO': 'dental',
            'PX': 'dental'}.get(mod, 'other DICOM (secondary capture/segmentation/dose)')
dicom_roots = ['/usr/lib/python3/dist-packages/pydicom/data', '/usr/lib/python3/dist-packages/nibabel',
               '/usr/share/doc/dicomnifti', '/usr/share/doc/libgdcm3.0', DEBS + '/octave-dicom', DEBS + '/heudiconv',
               DEBS + '/python3-guiqwt']
by_kind = {}
sop_seen = set()
for root in dicom_roots:
    for p in files(root + '/**/*'):
        with open(p, 'rb') as f:
            head = f.read(132)
        if head[128:132] != b'DICM' and not p.endswith('.dcm'):
            continue
        kind = dicom_kind(p)
        if not kind or not unique_bytes(p):
            continue
        try:   # the same image re-encoded (another transfer syntax) keeps its SOP Instance UID: keep the first
            uid = str(pydicom.dcmread(p, stop_before_pixels=True, force=True).get('SOPInstanceUID', '')) or p
        except Exception:
            uid = p
        if uid in sop_seen:
            continue
        sop_seen.add(uid)
        by_kind.setdefault(kind, []).append(p)

# --- MR: 2D slices shipped as PNG, and slices of NIfTI volumes -------------------------------------------------
itk = '/usr/share/doc/insighttoolkit5-examples/examples/Data/'
mr_png = [itk + n for n in ('BrainProtonDensitySlice.png', 'BrainT1Slice.png', 'BrainMidSagittalSlice.png', 'FatMRISlice.png')]
def render_volume(path):
    try:
        import nibabel as nib
        img = nib.load(path)
        data = np.asanyarray(img.dataobj)
    except Exception:
        return []
    while data.ndim > 3:
        data = data[..., data.shape[-1] // 2]
    if data.ndim != 3 or not np.issubdtype(data.dtype, np.number):
        return []
    data = data.astype(np.float32)
    outs = []
    stem = os.path.basename(path).split('.')[0]
    tag = hashlib.sha1(path.encode()).hexdigest()[:10]
    for axis in range(3):
        plane = [s for a, s in enumerate(data.shape) if a != axis]
        if min(plane) < MIN_SIDE:
            continue
        for frac in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
            i = int(frac * (data.shape[axis] - 1))
            out = os.path.join(RENDER, 'nifti', f'{tag}-{stem}-a{axis}-{i}.png')
            if not os.path.isfile(out):
                sl = np.take(data, i, axis=axis)
                lo, hi = np.percentile(sl, 1), np.percentile(sl, 99.5)
                if hi <= lo:
                    continue
                u8 = (np.clip((sl - lo) / (hi - lo), 0, 1) * 255).round().astype(np.uint8)
                os.makedirs(os.path.dirname(out), exist_ok=True)
                Image.fromarray(np.rot90(u8)).save(out)
            outs.append(out)
    return outs
volumes = files('/usr/lib/python3/dist-packages/nibabel/tests/data/anatomical.nii',
                '/usr/lib/python3/dist-packages/nibabel/tests/data/example4d.nii.gz',
                itk + 'KmeansTest_T1UCharRaw.nii.gz')
mr_slices = [s for v in volumes for s in render_volume(v)]

for kind in sorted(by_kind):
    extra = []
    if kind == 'MR':
        extra = [p for p in mr_png if os.path.isfile(p)] + mr_slices
    dic = by_kind[kind]
    chosen = pick(dic, lambda p: p)
    add(kind, chosen + (raster_kind(extra)[:max(0, CAP - len(chosen))] if extra else []))
if 'MR' not in by_kind:
    add('MR', raster_kind([p for p in mr_png if os.path.isfile(p)] + mr_slices))

with open(os.path.join(CACHE, 'manifest.csv'), 'w') as f:
    f.write('kind,path\n')
    for kind in sorted(manifest):
        for p in manifest[kind]:
            f.write(f'"{kind}","{os.path.abspath(p)}"\n' if (',' in kind or ',' in p) else f'{kind},{os.path.abspath(p)}\n')
for kind in sorted(manifest):
    print(f'  {len(manifest[kind]):4d}  {kind}')
PY

# Decode every listed file with cxr-lens's own decoder where it is built; failures move to kind `undecodable`.
if [ -f "$REPO/dist/src/imaging/decode.js" ] && command -v node >/dev/null; then
  node --input-type=module - "$CACHE/manifest.csv" "$REPO/dist/src/imaging/decode.js" <<'JS' || warn "decoder check failed"
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const [file, decoder] = process.argv.slice(2);
const { decodeImageFile } = await import(pathToFileURL(decoder).href);
const parse = (line) => (line.match(/("([^"]*)"|[^,]*)(,|$)/g) ?? []).map((c) => c.replace(/,$/, '').replace(/^"|"$/g, ''));
const lines = readFileSync(file, 'utf8').trim().split('\n');
const out = [lines[0]];
let bad = 0;
for (const line of lines.slice(1)) {
  const [kind, path] = parse(line);
  try {
    await decodeImageFile(path);
    out.push(line);
  } catch (e) {
    bad++;
    console.error(`negatives.sh: undecodable (${kind}): ${e.message}`);
    out.push(`undecodable,${path.includes(',') ? `"${path}"` : path}`);
  }
}
writeFileSync(file, out.join('\n') + '\n');
if (bad) console.error(`negatives.sh: ${bad} file(s) listed as undecodable`);
JS
fi
echo "negatives.sh: $(($(wc -l < "$CACHE/manifest.csv") - 1)) images listed in $CACHE/manifest.csv"
