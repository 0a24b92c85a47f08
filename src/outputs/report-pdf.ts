/**
 * The analysis report as a real PDF: searchable text and vector layout (pdf-lib's standard fonts, lines and
 * rectangles), the film and each finding's heatmap as embedded PNG images, a vector colour bar drawn from the
 * colour map's own table, the findings table (probability, threshold, rule, decision), the input checks' verdict
 * and flags, the model's name, version and hash, and the research-use disclaimer on every page.
 *
 * Browser-safe (no Node imports): `cxr explain --report`, the server's /api/v1/report and the viewer's download
 * all call reportPdf, so one layout serves the three. A report without heatmaps is refused: callers wait for them.
 */
import { PDFDocument, type PDFFont, type PDFImage, type PDFPage, rgb, StandardFonts } from 'pdf-lib';
import { type ColormapName, colormapTable } from '../imaging/colormap.js';
import type { Finding } from './findings.js';

export interface ReportHeatmap {
  finding: string;
  method: string;
  /** The map drawn over the film (the film untouched below `cutoff`), as PNG bytes. */
  overlayPng: Uint8Array;
}

export interface ReportInput {
  /** The research-use notice, printed in the banner and the footer of every page. */
  notice: string;
  createdAt: Date;
  /** Where the analysis ran, in words (e.g. "on the cxr server", "in the browser (private mode)"). */
  analysedBy: string;
  /** `software`: the cxr-lens version, where known. */
  model: { file: string; architecture: string; weights: string; sha256: string; software?: string; thresholdRule: string | null };
  image: { name: string; width: number; height: number; format: string; notes: readonly string[] };
  verdict: 'accepted' | 'rejected' | 'rejected-shown' | string;
  inputFlags: readonly { severity: string; message: string }[];
  findings: readonly Finding[];
  /** The film as shown (windowed, 8-bit), as PNG bytes. */
  filmPng: Uint8Array;
  heatmaps: readonly ReportHeatmap[];
  colormap: ColormapName;
  /** The fraction of each map's range below which the film is left as it is. */
  cutoff: number;
}

export class HeatmapsNotReadyError extends Error {}

const PAGE: [number, number] = [595.28, 841.89];
const MARGIN = 40;
const FOOTER = 46;
const RED = rgb(0.69, 0, 0.13);
const INK = rgb(0.07, 0.07, 0.07);
const MUTED = rgb(0.3, 0.3, 0.3);

/** The report's bytes (application/pdf). Throws HeatmapsNotReadyError when findings are given without any heatmap. */
export async function reportPdf(input: ReportInput): Promise<Uint8Array> {
  if (input.verdict !== 'rejected' && input.findings.length > 0 && input.heatmaps.length === 0) {
    throw new HeatmapsNotReadyError('the report needs the heatmaps: compute them before asking for the report');
  }
  const pdf = await PDFDocument.create();
  pdf.setTitle(`cxr-lens report: ${input.image.name}`);
  pdf.setSubject(input.notice);
  pdf.setProducer(`cxr-lens${input.model.software ? ` ${input.model.software}` : ''}`);
  pdf.setCreator('cxr-lens');
  pdf.setCreationDate(input.createdAt);
  const layout = new Layout(pdf, await pdf.embedFont(StandardFonts.Helvetica), await pdf.embedFont(StandardFonts.HelveticaBold), input.notice);
  header(layout, input);
  findingsTable(layout, input);
  await images(layout, pdf, input);
  layout.finish();
  return pdf.save();
}

/** Pages with a flowing cursor: anything that would reach the footer goes to a new page, so nothing overlaps it. */
class Layout {
  page!: PDFPage;
  y = 0;
  readonly width = PAGE[0] - 2 * MARGIN;

  constructor(
    readonly pdf: PDFDocument,
    readonly font: PDFFont,
    readonly bold: PDFFont,
    private readonly notice: string,
  ) {
    this.newPage();
  }

  newPage(): void {
    this.page = this.pdf.addPage(PAGE);
    this.y = PAGE[1] - MARGIN;
  }

  /** Room for `height` points above the footer, on a new page if this one is full. */
  need(height: number): void {
    if (this.y - height < FOOTER + 10) this.newPage();
  }

  /** Text the standard fonts can encode (WinAnsi): a few common signs spelled out, anything else dropped. */
  clean(text: string, font = this.font): string {
    const known = new Set(font.getCharacterSet());
    return text
      .replace(/≥/g, '>=')
      .replace(/≤/g, '<=')
      .replace(/[\u2010-\u2013]/g, '-')
      .replace(/[^\n]/gu, (c) => (known.has(c.codePointAt(0)!) ? c : '?'));
  }

  /** Wrapped text at the cursor; returns the lines drawn. */
  text(value: string, options: { size?: number; bold?: boolean; colour?: ReturnType<typeof rgb>; x?: number; width?: number } = {}): void {
    const size = options.size ?? 10;
    const font = options.bold ? this.bold : this.font;
    const x = options.x ?? MARGIN;
    for (const line of wrap(this.clean(value, font), font, size, options.width ?? this.width - (x - MARGIN))) {
      this.need(size * 1.35);
      this.y -= size * 1.35;
      this.page.drawText(line, { x, y: this.y, size, font, color: options.colour ?? INK });
    }
  }

  /** One line of text at a fixed place (the table's cells), cut with an ellipsis to its width. */
  cell(value: string, x: number, y: number, width: number, options: { size?: number; bold?: boolean; colour?: ReturnType<typeof rgb> } = {}): void {
    const size = options.size ?? 9;
    const font = options.bold ? this.bold : this.font;
    let line = this.clean(value, font);
    while (line.length > 1 && font.widthOfTextAtSize(line, size) > width) line = `${line.slice(0, -2)}…`;
    this.page.drawText(line, { x, y, size, font, color: options.colour ?? INK });
  }

  /** The disclaimer and page numbers in every page's footer, below the content's limit. */
  finish(): void {
    const pages = this.pdf.getPages();
    pages.forEach((page, i) => {
      page.drawLine({ start: { x: MARGIN, y: FOOTER }, end: { x: PAGE[0] - MARGIN, y: FOOTER }, thickness: 0.5, color: MUTED });
      page.drawText(this.clean(`${this.notice} Heatmaps show what drove the model, not where disease is.`, this.bold), { x: MARGIN, y: FOOTER - 14, size: 8.5, font: this.bold, color: RED });
      const number = `page ${i + 1} of ${pages.length}`;
      page.drawText(number, { x: PAGE[0] - MARGIN - this.font.widthOfTextAtSize(number, 8), y: FOOTER - 28, size: 8, font: this.font, color: MUTED });
    });
  }
}

function wrap(text: string, font: PDFFont, size: number, width: number): string[] {
  const lines: string[] = [];
  for (const paragraph of text.split('\n')) {
    let line = '';
    for (const word of paragraph.split(' ')) {
      const next = line ? `${line} ${word}` : word;
      if (line && font.widthOfTextAtSize(next, size) > width) {
        lines.push(line);
        line = word;
      } else line = next;
    }
    lines.push(line);
  }
  return lines;
}

function header(layout: Layout, input: ReportInput): void {
  const { page } = layout;
  page.drawRectangle({ x: 0, y: PAGE[1] - 30, width: PAGE[0], height: 30, color: RED });
  page.drawText(layout.clean(input.notice.toUpperCase(), layout.bold), { x: MARGIN, y: PAGE[1] - 20, size: 12, font: layout.bold, color: rgb(1, 1, 1) });
  layout.y = PAGE[1] - 40;
  layout.text('cxr-lens report', { size: 18, bold: true });
  layout.text(`${input.createdAt.toISOString().replace('T', ' ').slice(0, 19)} UTC; analysed ${input.analysedBy}.`, { size: 9, colour: MUTED });
  layout.y -= 4;
  const { model, image } = input;
  layout.text(`Model: ${model.architecture}, file ${model.file}, sha256 ${model.sha256}${model.software ? `; cxr-lens ${model.software}` : ''}`, { size: 9.5, bold: true });
  layout.text(`Weights: ${model.weights}`, { size: 9.5 });
  layout.text(model.thresholdRule ? `Thresholds: validated operating points (${model.thresholdRule}).` : 'No validated thresholds: probabilities only, no positive/negative calls.', { size: 9.5 });
  layout.text(`Image: ${image.name}, ${image.width} x ${image.height} ${image.format.toUpperCase()}${image.notes.length ? ` (${image.notes.join('; ')})` : ''}`, { size: 9.5 });
  layout.y -= 4;
  const verdicts: Record<string, string> = {
    accepted: 'accepted',
    rejected: 'REJECTED: no findings are given',
    'rejected-shown': 'REJECTED, findings shown on request: NOT to be trusted',
  };
  layout.text(`Input checks: ${verdicts[input.verdict] ?? input.verdict}${input.inputFlags.length ? '' : ' (no flags)'}`, { size: 10, bold: true, colour: input.verdict === 'accepted' ? INK : RED });
  for (const flag of input.inputFlags) layout.text(`${flag.severity}: ${flag.message}`, { size: 9.5, x: MARGIN + 12 });
}

const COLUMNS = { finding: 0, probability: 120, bar: 165, threshold: 260, rule: 315, decision: 425 };

function findingsTable(layout: Layout, input: ReportInput): void {
  layout.y -= 8;
  layout.need(40);
  layout.text('Findings', { size: 12, bold: true });
  if (input.findings.length === 0) {
    layout.text('None: the input checks rejected this image.', { size: 10 });
    return;
  }
  const rowHeight = 15;
  const x = (column: keyof typeof COLUMNS) => MARGIN + COLUMNS[column];
  const headings = () => {
    layout.need(rowHeight * 2);
    layout.y -= rowHeight;
    layout.cell('Finding', x('finding'), layout.y, 115, { bold: true });
    layout.cell('Probability', x('probability'), layout.y, 135, { bold: true });
    layout.cell('Threshold', x('threshold'), layout.y, 50, { bold: true });
    layout.cell('Rule', x('rule'), layout.y, 105, { bold: true });
    layout.cell('Decision', x('decision'), layout.y, layout.width - COLUMNS.decision, { bold: true });
    layout.page.drawLine({ start: { x: MARGIN, y: layout.y - 4 }, end: { x: MARGIN + layout.width, y: layout.y - 4 }, thickness: 0.5, color: MUTED });
  };
  headings();
  const shown = new Set(input.heatmaps.map((h) => h.finding));
  for (const f of [...input.findings].sort(byDecisionThenProbability)) {
    if (layout.y - rowHeight < FOOTER + 10) {
      layout.newPage();
      headings();
    }
    layout.y -= rowHeight;
    const y = layout.y;
    const positive = f.decision === 'positive';
    layout.cell(`${f.name.replace(/_/g, ' ')}${shown.has(f.name) ? ' *' : ''}`, x('finding'), y, 115, { bold: positive });
    layout.cell(`${(f.probability * 100).toFixed(1)}%`, x('probability'), y, 42);
    const barWidth = 85;
    layout.page.drawRectangle({ x: x('bar'), y: y - 1, width: barWidth, height: 8, color: rgb(0.9, 0.9, 0.9) });
    layout.page.drawRectangle({ x: x('bar'), y: y - 1, width: barWidth * f.probability, height: 8, color: rgb(0.17, 0.42, 0.69) });
    if (f.threshold !== null) layout.page.drawRectangle({ x: x('bar') + barWidth * f.threshold - 0.75, y: y - 3, width: 1.5, height: 12, color: RED });
    layout.cell(f.threshold === null ? '-' : `${(f.threshold * 100).toFixed(1)}%`, x('threshold'), y, 50);
    layout.cell(f.thresholdRule ?? '-', x('rule'), y, 105);
    layout.cell(f.decision === null ? 'no decision' : f.decision, x('decision'), y, layout.width - COLUMNS.decision, { bold: positive, colour: positive ? RED : INK });
  }
  layout.y -= 6;
  const reasons = [...new Set(input.findings.filter((f) => f.decision === null && f.decisionNote).map((f) => f.decisionNote!))];
  for (const reason of reasons) layout.text(`No decision: ${reason}.`, { size: 8.5, colour: MUTED });
  layout.text('Red mark on a bar: the finding\'s threshold. * : its heatmap is below.', { size: 8.5, colour: MUTED });
}

/** Positive calls first, then by probability. */
function byDecisionThenProbability(a: Finding, b: Finding): number {
  const rank = (f: Finding) => (f.decision === 'positive' ? 0 : 1);
  return rank(a) - rank(b) || b.probability - a.probability;
}

async function images(layout: Layout, pdf: PDFDocument, input: ReportInput): Promise<void> {
  const panels: { label: string; image: PDFImage }[] = [{ label: 'Film', image: await pdf.embedPng(input.filmPng) }];
  for (const h of input.heatmaps) panels.push({ label: `${h.finding.replace(/_/g, ' ')} (${h.method})`, image: await pdf.embedPng(h.overlayPng) });
  const columns = 2;
  const gap = 14;
  const size = (layout.width - gap * (columns - 1)) / columns;
  layout.y -= 10;
  layout.need(30);
  layout.text(input.heatmaps.length ? 'Film and heatmaps' : 'Film', { size: 12, bold: true });
  for (let i = 0; i < panels.length; i += columns) {
    layout.need(size + 18);
    const top = layout.y - 4;
    panels.slice(i, i + columns).forEach((panel, k) => {
      const left = MARGIN + k * (size + gap);
      const scale = Math.min(size / panel.image.width, size / panel.image.height);
      const [w, h] = [panel.image.width * scale, panel.image.height * scale];
      layout.page.drawRectangle({ x: left, y: top - size, width: size, height: size, color: rgb(0, 0, 0) });
      layout.page.drawImage(panel.image, { x: left + (size - w) / 2, y: top - size + (size - h) / 2, width: w, height: h });
      layout.cell(panel.label, left, top - size - 12, size);
    });
    layout.y = top - size - 16;
  }
  if (input.heatmaps.length) colourBar(layout, input.colormap, input.cutoff, [...new Set(input.heatmaps.map((h) => h.method))].join(', '));
}

/** The colour scale as vector rectangles, one per table entry above the cut-off; the part below hatched as bare film. */
function colourBar(layout: Layout, colormap: ColormapName, cutoff: number, method: string): void {
  layout.need(70);
  layout.y -= 8;
  const table = colormapTable(colormap);
  const [x0, width, height] = [MARGIN, 300, 12];
  const y = layout.y - height;
  const at = x0 + cutoff * width;
  for (let stripe = x0; stripe < at; stripe += 4) {
    layout.page.drawRectangle({ x: stripe, y, width: Math.min(2, at - stripe), height, color: rgb(0.6, 0.6, 0.6) });
    layout.page.drawRectangle({ x: stripe + 2, y, width: Math.max(0, Math.min(2, at - stripe - 2)), height, color: rgb(0.75, 0.75, 0.75) });
  }
  const from = Math.round(cutoff * 255);
  const step = (x0 + width - at) / (256 - from);
  for (let q = from; q < 256; q++) {
    layout.page.drawRectangle({ x: at + (q - from) * step, y, width: step + 0.2, height, color: rgb(table[3 * q] / 255, table[3 * q + 1] / 255, table[3 * q + 2] / 255) });
  }
  layout.page.drawRectangle({ x: x0, y, width, height, borderColor: MUTED, borderWidth: 0.5 });
  layout.cell('weakest', x0, y - 10, 60, { size: 8 });
  layout.cell(`${Math.round(cutoff * 100)}%`, at - 6, y - 10, 30, { size: 8 });
  layout.cell('strongest', x0 + width - layout.font.widthOfTextAtSize('strongest', 8), y - 10, 60, { size: 8 });
  layout.y = y - 12;
  layout.text(`Colour (${colormap}): how strongly each region drove the finding (${method}), on each map's own range.`, { size: 8.5 });
  layout.text(`Below ${Math.round(cutoff * 100)}% the film is left as it is. Not a probability; not comparable between maps.`, { size: 8.5 });
}
