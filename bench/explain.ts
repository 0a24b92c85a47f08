/**
 * Grad-CAM of all 14 findings on one 1024 px NIH image, end to end (decode the PNG -> preprocess -> one run of the
 * explain graph -> 14 maps -> 14 overlays at 1024 px -> 14 PNGs), against our prediction alone (decode ->
 * preprocess -> run) and against PyTorch with a hook-based Grad-CAM (bench/explain_reference.py), rounds
 * alternated in one run, medians. Random weights (timing does not depend on them), 224 px input, 2 threads each.
 * Then the methods beyond the CAMs (FullGrad, guided backpropagation, Guided Grad-CAM, Grad-CAM x IG), one finding's
 * map each (decode and preprocess included, no rendering), against PyTorch implementations of the same definitions.
 *
 * Run: npx tsc -p . && GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736 \
 *        node dist/bench/explain.js [--rounds 10] [--arch densenet121,mobilenet_v2] [--literal-rounds 2] [--method-rounds 5]
 * Writes bench/results/explain.json.
 */
import { join } from 'node:path';
import { Explainer, type ExplanationMethod, renderHeatmaps } from '../src/explain/index.js';
import { decodeImageFile } from '../src/imaging/index.js';
import { Predictor } from '../src/inference/predictor.js';
import { buildModel } from '../src/models/zoo/index.js';
import { BENCH_DIR, type HeadlineCase, PythonWorker, countOption, headlineCase, machine, median, option, round, writeResults } from './lib.js';

const IMAGE = join(BENCH_DIR, '..', '..', 'shared', 'data', 'nih-cxr14-subset', 'images-1024', '00000001_000.png');
const THREADS = 2;
const SIZE = 224;
/** Methods timed per finding, beside PyTorch implementations of the same definitions. */
const PER_FINDING_METHODS = ['fullgrad', 'guided-backprop', 'guided-gradcam', 'gradcam-ig'] as const satisfies readonly ExplanationMethod[];

interface Timings {
  ours_predict: number[];
  ours_gradcam_maps: number[];
  ours_gradcam_pngs: number[];
  torch_predict: number[];
  torch_gradcam_maps: number[];
  torch_gradcam_pngs: number[];
  torch_gradcam_literal: number[];
}

async function timed<T>(work: () => Promise<T>): Promise<[number, T]> {
  const start = performance.now();
  const result = await work();
  return [performance.now() - start, result];
}

/** One finding's map per method, ours and PyTorch's alternating; medians in ms. */
async function perFinding(explainer: Explainer, rounds: number, python: PythonWorker) {
  const finding = explainer.labels[0];
  const [buildMs] = await timed(() => explainer.prepare([...PER_FINDING_METHODS]));
  const out: Record<string, { ours_ms: number; torch_ms: number; ours_rounds_ms: number[]; torch_rounds_ms: number[] }> = {};
  for (const method of PER_FINDING_METHODS) {
    const ours = async () => explainer.explain(await decodeImageFile(IMAGE), { method, findings: [finding] });
    const torch = async () => (await python.request<{ ms: number }>({ op: 'method', name: method, finding: 0 })).ms;
    await ours();
    await torch();
    const times = { ours: [] as number[], torch: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      times.ours.push((await timed(ours))[0]);
      times.torch.push(await torch());
    }
    out[method] = { ours_ms: round(median(times.ours), 1), torch_ms: round(median(times.torch), 1), ours_rounds_ms: times.ours.map((x) => round(x, 1)), torch_rounds_ms: times.torch.map((x) => round(x, 1)) };
    process.stderr.write(`  ${method}: ours ${out[method].ours_ms} ms, PyTorch ${out[method].torch_ms} ms per finding\n`);
  }
  return { per_finding: out, graph_build_ms: round(buildMs, 0) };
}

async function benchArch(arch: string, rounds: number, literalRounds: number, methodRounds: number, python: PythonWorker) {
  const model = buildModel(arch, { height: SIZE, width: SIZE });
  const predictor = await Predictor.create(model, { threads: THREADS, batchSize: 1 });
  const explainer = await Explainer.create(model, { threads: THREADS });
  const [prepareMs] = await timed(() => explainer.prepare(['gradcam']));
  await python.request({ op: 'setup', arch, size: SIZE, image: IMAGE });
  const t: Timings = { ours_predict: [], ours_gradcam_maps: [], ours_gradcam_pngs: [], torch_predict: [], torch_gradcam_maps: [], torch_gradcam_pngs: [], torch_gradcam_literal: [] };
  let pngBytes = { ours: 0, torch: 0 };
  const ours = {
    predict: async () => predictor.predict([await decodeImageFile(IMAGE)]),
    maps: async () => explainer.explain(await decodeImageFile(IMAGE), { method: 'gradcam' }),
    pngs: async () => {
      const image = await decodeImageFile(IMAGE);
      const explanation = await explainer.explain(image, { method: 'gradcam' });
      return renderHeatmaps(image, explanation);
    },
  };
  // Warm-up (first runs allocate): not timed.
  await ours.predict();
  await ours.maps();
  await ours.pngs();
  await python.request({ op: 'predict' });
  await python.request({ op: 'gradcam', pngs: true });
  for (let r = 0; r < rounds; r++) {
    t.ours_predict.push((await timed(ours.predict))[0]);
    t.torch_predict.push((await python.request<{ ms: number }>({ op: 'predict' })).ms);
    t.ours_gradcam_maps.push((await timed(ours.maps))[0]);
    t.torch_gradcam_maps.push((await python.request<{ ms: number }>({ op: 'gradcam', pngs: false })).ms);
    const [ms, pngs] = await timed(ours.pngs);
    t.ours_gradcam_pngs.push(ms);
    const reference = await python.request<{ ms: number; bytes: number }>({ op: 'gradcam', pngs: true });
    t.torch_gradcam_pngs.push(reference.ms);
    pngBytes = { ours: pngs.reduce((n, p) => n + p.length, 0), torch: reference.bytes };
  }
  for (let r = 0; r < literalRounds; r++) t.torch_gradcam_literal.push((await python.request<{ ms: number }>({ op: 'gradcam_literal' })).ms);
  const methods = await perFinding(explainer, methodRounds, python);
  await predictor.close();
  await explainer.close();
  const medians = Object.fromEntries(Object.entries(t).filter(([, v]) => v.length > 0).map(([k, v]) => [k, round(median(v), 1)])) as Record<keyof Timings, number>;
  return {
    medians,
    rounds_ms: Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.map((x: number) => round(x, 1))])),
    png_bytes_14: pngBytes,
    explain_graph_build_ms: round(prepareMs, 0),
    methods_per_finding: methods.per_finding,
    methods_graph_build_ms: methods.graph_build_ms,
  };
}

async function main(): Promise<void> {
  const rounds = countOption('rounds', 10);
  const literalRounds = countOption('literal-rounds', 2);
  const methodRounds = countOption('method-rounds', 5);
  const archs = (option('arch') ?? 'densenet121,mobilenet_v2').split(',');
  const python = new PythonWorker('explain_reference.py');
  const details: Record<string, Awaited<ReturnType<typeof benchArch>>> = {};
  try {
    for (const arch of archs) {
      details[arch] = await benchArch(arch, rounds, literalRounds, methodRounds, python);
      process.stderr.write(`${arch}: ${JSON.stringify(details[arch].medians)}\n`);
    }
  } finally {
    python.close();
  }
  const headline: Record<string, HeadlineCase> = {};
  const arch = details.densenet121 ? 'densenet121' : archs[0];
  const d = details[arch];
  const name = arch === 'densenet121' ? '' : `_${arch}`;
  headline[`gradcam_all14_1024${name}`] = headlineCase(
    d.medians.ours_gradcam_pngs,
    d.medians.torch_gradcam_pngs,
    `PyTorch 1.13 (2 threads) + hook-based Grad-CAM, one forward and 14 head-only backward passes, torch bilinear resize, PIL PNG level 1; ${arch} 224 px, decode of the 1024 px PNG to 14 overlay PNGs on both sides (same run, alternating)`,
  );
  headline[`gradcam_all14_vs_predict${name}`] = headlineCase(
    d.medians.ours_gradcam_pngs,
    d.medians.ours_predict,
    'our prediction alone (decode the 1024 px PNG, preprocess, one run of the plain model); ours = the same plus Grad-CAM of 14 findings and 14 overlay PNGs at 1024 px (same run, alternating)',
  );
  headline[`gradcam_all14_maps_vs_predict${name}`] = headlineCase(
    d.medians.ours_gradcam_maps,
    d.medians.ours_predict,
    'our prediction alone (decode, preprocess, plain model); ours = decode, preprocess, one explain-graph run giving the 14 logits and 14 Grad-CAM maps (no rendering) (same run, alternating)',
  );
  headline[`gradcam_all14_maps${name}`] = headlineCase(
    d.medians.ours_gradcam_maps,
    d.medians.torch_gradcam_maps,
    'PyTorch + hook-based Grad-CAM up to the 14 maps (no rendering), decode and preprocess included on both sides (same run, alternating)',
  );
  for (const a of archs) {
    for (const [method, m] of Object.entries(details[a].methods_per_finding)) {
      headline[`${method}_per_finding_${a}`] = headlineCase(
        m.ours_ms,
        m.torch_ms,
        `PyTorch 1.13 (2 threads), the same definition vectorised in torch (bench/explain_reference.py); one finding's map on ${a} 224 px, decode and preprocess of the 1024 px PNG included, no rendering (same run, alternating)`,
      );
    }
  }
  const path = writeResults('explain', {
    headline,
    details,
    notes: [
      'Medians of alternating rounds; times in ms per image; both sides use 2 threads; models with random weights (timing does not depend on them).',
      'Rendering dominates the end-to-end cases: 14 overlays of 1024 x 1024 px (resample, blend, PNG encode). The maps themselves cost about one prediction.',
      'torch_gradcam_literal: pytorch-grad-cam\'s own way (a forward and a full backward with parameter gradients per finding), for scale.',
      'methods_per_finding: one finding each; Grad-CAM x IG runs 32 path points (batches of 8) on both sides; methods_graph_build_ms builds their graphs (bias-gradient, guided and plain input-gradient). Measured on 2 cores shared with other work: noisy.',
    ],
    machine: machine(),
  });
  process.stdout.write(`${JSON.stringify(headline, null, 2)}\nwritten to ${path}\n`);
}

await main();
