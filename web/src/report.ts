/**
 * The downloadable report of the heatmaps the viewer computed (reportFindings: the selected finding and the two most
 * probable others; the viewer computes them first). PDF: the library's own report (src/outputs/report-pdf.ts:
 * text, vector table and colour bar, embedded images), the same file `cxr explain --report` and the server write.
 * PNG: one A4-proportioned page drawn on a canvas.
 */
import { type ColormapName, DEFAULT_CUTOFF, type DecodedImage } from '../../src/imaging/browser.js';
import { reportPdf as buildReportPdf } from '../../src/outputs/report-pdf.js';
import { RESEARCH_NOTICE } from '../../src/serve/analysis.js';
import type { ModelCard } from '../../src/serve/model-card.js';
import type { ExplanationView, Mode, PredictionView } from './engines.js';
import { type FindingView, noDecisionReason, orderFindings, ruleText, thresholdText } from './findings.js';
import { composite, heatmapCanvas, type Window, windowedCanvas } from './render.js';

export interface ReportInput {
  card: ModelCard;
  mode: Mode;
  image: DecodedImage;
  prediction: PredictionView;
  explanation: ExplanationView | null;
  selected: string | null;
  window: Window;
  opacity: number;
  colormap: ColormapName;
}

/** The findings a report shows heatmaps of: the selected one and the most probable others, three at most. */
export function reportFindings(findings: readonly FindingView[], selected: string | null): string[] {
  return [selected, ...orderFindings(findings as FindingView[]).map((f) => f.name)].filter((n, i, all): n is string => !!n && all.indexOf(n) === i).slice(0, 3);
}

const WIDTH = 1240;
const HEIGHT = 1754;
const MARGIN = 60;

export function reportCanvas(input: ReportInput): HTMLCanvasElement {
  const canvas = document.createElement('canvas');
  canvas.width = WIDTH;
  canvas.height = HEIGHT;
  const c = canvas.getContext('2d')!;
  c.fillStyle = '#fff';
  c.fillRect(0, 0, WIDTH, HEIGHT);
  c.fillStyle = '#b00020';
  c.fillRect(0, 0, WIDTH, 56);
  c.fillStyle = '#fff';
  c.font = 'bold 26px sans-serif';
  c.fillText(RESEARCH_NOTICE.toUpperCase(), MARGIN, 37);

  let y = 100;
  const text = (value: string, font = '18px sans-serif', colour = '#111', width = WIDTH - 2 * MARGIN) => {
    c.font = font;
    c.fillStyle = colour;
    for (const line of wrap(c, value, width)) {
      c.fillText(line, MARGIN, y);
      y += parseInt(font.match(/(\d+)px/)![1], 10) * 1.35;
    }
  };
  const { card, prediction, image } = input;
  text('cxr-lens report', 'bold 32px sans-serif');
  text(`${new Date().toISOString().replace('T', ' ').slice(0, 19)} UTC · analysed ${input.mode === 'server' ? `on the cxr server${prediction.requestId ? ` (request ${prediction.requestId})` : ''}` : 'in the browser (private mode; the image was not uploaded)'}`, '16px sans-serif', '#444');
  y += 8;
  text(`Model: ${card.architecture}, file ${card.file} (sha256 ${card.sha256.slice(0, 16)}…)`, 'bold 18px sans-serif');
  text(`Weights: ${card.weights}`, '17px sans-serif', '#7a4a00');
  text(card.thresholds ? `Thresholds: ${ruleText(card.thresholds.rule)}, chosen on the ${card.thresholds.source}.` : 'No validated thresholds: probabilities only, no positive/negative calls.', '17px sans-serif');
  text(`Image: ${prediction.image.name}, ${image.width} × ${image.height} ${image.format.toUpperCase()}${image.notes.length ? ` (${image.notes.join('; ')})` : ''}`, '17px sans-serif');
  text(`Input checks: ${prediction.inputFlags.length ? prediction.inputFlags.map((f) => `${f.severity}: ${f.message}`).join('; ') : card.inputChecks ? 'passed' : 'no flags (image size, blankness and DICOM tags only; this model has no out-of-distribution detector)'}`, '17px sans-serif');
  if (prediction.verdict === 'rejected') text('The input checks rejected this image: no findings are given.', 'bold 17px sans-serif', '#b00020');
  if (prediction.verdict === 'rejected-shown') text('The input checks rejected this image; the findings below were shown on request and are NOT to be trusted.', 'bold 17px sans-serif', '#b00020');
  y += 10;

  // Findings table.
  const sorted = orderFindings(prediction.findings as FindingView[]);
  const rowHeight = 26;
  const barX = MARGIN + 230;
  const barWidth = 420;
  c.font = 'bold 17px sans-serif';
  c.fillStyle = '#111';
  c.fillText('Finding', MARGIN, y);
  c.fillText('Probability', barX, y);
  c.fillText('Decision at threshold', barX + barWidth + 90, y);
  y += 12;
  for (const f of sorted) {
    y += rowHeight;
    c.font = f.name === input.selected ? 'bold 17px sans-serif' : '17px sans-serif';
    c.fillStyle = '#111';
    c.fillText(f.name.replace(/_/g, ' '), MARGIN, y);
    c.fillStyle = '#e6e6e6';
    c.fillRect(barX, y - 15, barWidth, 16);
    c.fillStyle = '#2b6cb0';
    c.fillRect(barX, y - 15, barWidth * f.probability, 16);
    if (f.threshold !== null) {
      c.fillStyle = '#b00020';
      c.fillRect(barX + barWidth * f.threshold - 1, y - 19, 3, 24);
    }
    c.fillStyle = '#111';
    c.font = '17px sans-serif';
    c.fillText(`${(f.probability * 100).toFixed(1)}%`, barX + barWidth + 10, y);
    if (f.decision === 'positive') {
      c.fillStyle = '#b00020';
      c.font = 'bold 17px sans-serif';
    }
    c.fillText(f.decision === null ? `no decision: ${noDecisionReason(f, input.card)}` : `${f.decision.toUpperCase()}  ${thresholdText(f)}`, barX + barWidth + 90, y);
  }
  y += 40;

  // Images: the original and up to three overlays.
  const gray = windowedCanvas(image, input.window);
  const panels: { label: string; canvas: HTMLCanvasElement }[] = [{ label: 'Original', canvas: gray }];
  const { explanation } = input;
  if (explanation) {
    const names = reportFindings(sorted, input.selected).filter((n) => explanation.maps.has(n));
    for (const name of names) {
      panels.push({ label: `${name.replace(/_/g, ' ')} (${explanation.method})`, canvas: composite(gray, heatmapCanvas(explanation.maps.get(name)!, explanation.geometry, input.colormap, explanation.method), input.opacity) });
    }
  }
  const gap = 16;
  // Room below for the labels and the footer line, which nothing may overlap.
  const size = Math.min((WIDTH - 2 * MARGIN - gap * (panels.length - 1)) / panels.length, HEIGHT - y - 110);
  panels.forEach((panel, i) => {
    const x = MARGIN + i * (size + gap);
    const scale = Math.min(size / panel.canvas.width, size / panel.canvas.height);
    c.fillStyle = '#000';
    c.fillRect(x, y, size, size);
    c.drawImage(panel.canvas, x + (size - panel.canvas.width * scale) / 2, y + (size - panel.canvas.height * scale) / 2, panel.canvas.width * scale, panel.canvas.height * scale);
    c.fillStyle = '#111';
    c.font = '15px sans-serif';
    c.fillText(panel.label, x, y + size + 22);
  });
  c.fillStyle = '#b00020';
  c.font = 'bold 18px sans-serif';
  c.fillText(`${RESEARCH_NOTICE} Heatmaps show what drove the model, not where disease is.`, MARGIN, HEIGHT - 30);
  return canvas;
}

function wrap(c: CanvasRenderingContext2D, value: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of value.split(' ')) {
    const next = line ? `${line} ${word}` : word;
    if (c.measureText(next).width > width && line) {
      lines.push(line);
      line = word;
    } else line = next;
  }
  if (line) lines.push(line);
  return lines;
}

export function canvasPng(canvas: HTMLCanvasElement): Promise<Blob> {
  return new Promise((resolve, reject) => canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('the report could not be encoded as PNG'))), 'image/png'));
}

async function canvasBytes(canvas: HTMLCanvasElement): Promise<Uint8Array> {
  return new Uint8Array(await (await canvasPng(canvas)).arrayBuffer());
}

/** The report as a real PDF, from the maps the viewer holds (the film as windowed on screen, the overlays as drawn). */
export async function reportPdf(input: ReportInput): Promise<Blob> {
  const { card, prediction, image, explanation } = input;
  const gray = windowedCanvas(image, input.window);
  const names = explanation ? reportFindings(prediction.findings as FindingView[], input.selected).filter((n) => explanation.maps.has(n)) : [];
  const heatmaps = [];
  for (const name of names) {
    const layer = heatmapCanvas(explanation!.maps.get(name)!, explanation!.geometry, input.colormap, explanation!.method);
    heatmaps.push({ finding: name, method: explanation!.method, overlayPng: await canvasBytes(composite(gray, layer, input.opacity)) });
  }
  const bytes = await buildReportPdf({
    notice: RESEARCH_NOTICE,
    createdAt: new Date(),
    analysedBy: input.mode === 'server' ? `on the cxr server${prediction.requestId ? ` (request ${prediction.requestId})` : ''}` : 'in the browser (private mode; the image was not uploaded)',
    model: { file: card.file, architecture: card.architecture, weights: card.weights, sha256: card.sha256, thresholdRule: card.thresholds?.rule ?? null },
    image: { name: prediction.image.name, width: image.width, height: image.height, format: image.format, notes: image.notes },
    verdict: prediction.verdict,
    inputFlags: prediction.inputFlags,
    findings: prediction.findings,
    filmPng: await canvasBytes(gray),
    heatmaps,
    colormap: input.colormap,
    cutoff: DEFAULT_CUTOFF,
  });
  return new Blob([bytes as BlobPart], { type: 'application/pdf' });
}

export function download(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
