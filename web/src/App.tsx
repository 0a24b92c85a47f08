/** The viewer: pick an image, see findings, click one for its heatmap, download a report; server or private mode. */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { type ColormapName, computeGeometry, type DecodedImage } from '../../src/imaging/browser.js';
import { RESEARCH_NOTICE } from '../../src/serve/analysis.js';
import type { ModelCard } from '../../src/serve/model-card.js';
import { FilePicker } from './components/FilePicker.js';
import { FindingsList } from './components/FindingsList.js';
import { InputChecks } from './components/InputChecks.js';
import { DisplayControls, HeatmapControls } from './components/Controls.js';
import { ModeSwitch } from './components/ModeSwitch.js';
import { ModelCardPanel } from './components/ModelCardPanel.js';
import { PacsPanel } from './components/PacsPanel.js';
import { Viewer } from './components/Viewer.js';
import { ColourBar } from './components/ColourBar.js';
import { decodeInBrowser } from './decode.js';
import { orderFindings } from './findings.js';
import { type Engine, type ExplanationView, fetchModelCard, type Mode, type PredictionView, PrivateEngine, ServerEngine, type Upload } from './engines.js';
import { fullWindow, heatmapCanvas, type Window } from './render.js';
import { canvasPng, download, reportCanvas, reportFindings, reportPdf } from './report.js';

type Phase = 'empty' | 'decoding' | 'predicting' | 'explaining' | 'ready' | 'error';

export function App() {
  const [card, setCard] = useState<ModelCard | null>(null);
  const [mode, setMode] = useState<Mode>('server');
  const engines = useRef<{ server?: ServerEngine; private?: PrivateEngine }>({});
  const [privateStatus, setPrivateStatus] = useState('');
  const [upload, setUpload] = useState<Upload | null>(null);
  const [image, setImage] = useState<DecodedImage | null>(null);
  const [prediction, setPrediction] = useState<PredictionView | null>(null);
  const [explanation, setExplanation] = useState<ExplanationView | null>(null);
  const [phase, setPhase] = useState<Phase>('empty');
  const [message, setMessage] = useState('');
  const [method, setMethod] = useState('');
  const [selected, setSelected] = useState<string | null>(null);
  const [opacity, setOpacity] = useState(0.5);
  const [colormap, setColormap] = useState<ColormapName>('turbo');
  const [windowing, setWindowing] = useState<Window>({ center: 127.5, width: 255 });
  const [sideBySide, setSideBySide] = useState(true);
  const [reporting, setReporting] = useState(false);
  const run = useRef(0);
  /**
   * Maps being computed for the current image and method, by finding. One asked for by choosing a finding is
   * aborted when another is chosen; one a report waits for (`kept`) is not.
   */
  const pending = useRef(new Map<string, { result: Promise<ExplanationView | null>; controller: AbortController; kept: boolean }>());

  useEffect(() => {
    fetchModelCard().then(
      (c) => {
        setCard(c);
        engines.current.server = new ServerEngine(c);
        setMethod(c.explanationMethods[0] ?? '');
      },
      (error: Error) => fail(error.message),
    );
  }, []);

  const fail = (text: string) => {
    setPhase('error');
    setMessage(text);
  };

  async function engineFor(which: Mode): Promise<Engine> {
    if (which === 'server') return engines.current.server!;
    if (!engines.current.private) {
      setPrivateStatus('Loading the model into this browser…');
      engines.current.private = await PrivateEngine.start(card!);
      setPrivateStatus(`Model loaded in this browser: ${engines.current.private.backend}.`);
    }
    return engines.current.private;
  }

  /** Predicts, then explains; a newer run makes the older one's results be dropped. A rejected image is not explained. */
  async function analyse(which: Mode, file: Upload, decoded: DecodedImage, chosenMethod: string, keepPrediction = false, showRejected = false) {
    const id = ++run.current;
    const current = () => id === run.current;
    setPhase(keepPrediction ? 'explaining' : 'predicting');
    setMessage(which === 'server' ? 'Analysing on the server…' : 'Analysing in this browser…');
    if (!keepPrediction) setPrediction(null);
    setExplanation(null);
    abortPending(undefined, true);
    try {
      const engine = await engineFor(which);
      if (!current()) return;
      let finding = selected;
      if (!keepPrediction) {
        const predicted = await engine.predict(file, decoded, showRejected);
        if (!current()) return;
        setPrediction(predicted);
        finding = orderFindings(predicted.findings)[0]?.name ?? null;
        setSelected(finding);
        if (predicted.verdict === 'rejected') {
          setPhase('ready');
          setMessage('The input checks rejected this image: no findings.');
          return;
        }
      } else if (prediction?.verdict === 'rejected') {
        setPhase('ready');
        return;
      }
      // A method this engine cannot run (gradient methods in the browser) gives way to the engine's first one.
      const runnable = engine.methods.includes(chosenMethod) ? chosenMethod : engine.methods[0];
      if (!runnable) {
        setPhase('ready');
        setMessage(`No explanation method can run ${which === 'private' ? 'in the browser' : 'here'}; heatmaps are off.`);
        return;
      }
      if (runnable !== chosenMethod) setMethod(runnable);
      if (!finding) {
        setPhase('ready');
        return;
      }
      setExplanation({ method: runnable, geometry: computeGeometry(decoded.width, decoded.height, card!.preprocessing), maps: new Map(), ms: 0 });
      await explainFinding(engine, which, file, decoded, runnable, finding, id);
    } catch (error) {
      if (current()) fail((error as Error).message);
    }
  }

  /** Aborts the maps being computed, but for `keep` and (unless `reports` too) those a report waits for. */
  function abortPending(keep?: string, reports = false) {
    for (const [finding, entry] of pending.current) {
      if (finding === keep || (entry.kept && !reports)) continue;
      entry.controller.abort();
      pending.current.delete(finding);
    }
  }

  /**
   * One finding's map, added to the current explanation: only the finding on screen is computed. Choosing another
   * while it runs aborts it (the server stops its worker) unless a report waits for it. Resolves to the new map's
   * view, or null when it was aborted or failed.
   */
  function explainFinding(engine: Engine, which: Mode, file: Upload, decoded: DecodedImage, chosen: string, finding: string, id: number, kept = false): Promise<ExplanationView | null> {
    const current = () => id === run.current;
    const running = pending.current.get(finding);
    if (running) {
      running.kept ||= kept;
      return running.result;
    }
    const controller = new AbortController();
    setPhase('explaining');
    const result = (async () => {
      try {
        const explained = await engine.explain(file, decoded, chosen, [finding], (text) => current() && setMessage(text), controller.signal);
        if (!current()) return null;
        setExplanation((view) => (view && view.method === chosen ? { ...explained, maps: new Map([...view.maps, ...explained.maps]), ms: view.ms + explained.ms } : view));
        setMessage(`Done: ${chosen} heatmap of ${finding.replace(/_/g, ' ')} in ${(explained.ms / 1000).toFixed(1)} s ${which === 'server' ? 'on the server' : 'in this browser'}.`);
        return explained;
      } catch (error) {
        if (current() && !controller.signal.aborted) fail((error as Error).message);
        return null;
      } finally {
        if (pending.current.get(finding)?.controller === controller) pending.current.delete(finding);
        if (current() && pending.current.size === 0 && !controller.signal.aborted) setPhase((phase) => (phase === 'explaining' ? 'ready' : phase));
      }
    })();
    pending.current.set(finding, { result, controller, kept });
    return result;
  }

  function onSelect(finding: string) {
    setSelected(finding);
    if (upload && image && explanation && !explanation.maps.has(finding)) {
      const engine = mode === 'server' ? engines.current.server : engines.current.private;
      abortPending(finding);
      if (engine) void explainFinding(engine, mode, upload, image, explanation.method, finding, run.current);
    }
  }

  async function onFile(file: File) {
    run.current++;
    setPhase('decoding');
    setMessage(`Reading ${file.name}…`);
    setPrediction(null);
    setExplanation(null);
    setImage(null);
    const bytes = new Uint8Array(await file.arrayBuffer());
    const next = { bytes, name: file.name };
    let decoded: DecodedImage;
    try {
      decoded = await decodeInBrowser(bytes, file.name);
    } catch (error) {
      fail((error as Error).message);
      return;
    }
    setUpload(next);
    setImage(decoded);
    setWindowing(fullWindow(decoded));
    await analyse(mode, next, decoded, method);
  }

  function onMode(next: Mode) {
    setMode(next);
    if (upload && image) void analyse(next, upload, image, method);
    else if (next === 'private') engineFor('private').catch((error: Error) => fail(error.message));
  }

  function onMethod(next: string) {
    setMethod(next);
    if (upload && image && prediction) void analyse(mode, upload, image, next, true);
  }

  const layer = useMemo(() => {
    const map = selected ? explanation?.maps.get(selected) : undefined;
    return map && explanation ? heatmapCanvas(map, explanation.geometry, colormap, explanation.method) : null;
  }, [explanation, selected, colormap]);

  /**
   * The report only once its heatmaps are there: the ones missing (a finding never shown, or one still computing)
   * are computed first, and the download waits for them; without them there is no report.
   */
  async function onReport(kind: 'png' | 'pdf') {
    if (!card || !image || !prediction || !upload) return;
    const id = run.current;
    setReporting(true);
    try {
      let view = explanation;
      if (prediction.verdict !== 'rejected') {
        if (!view) throw new Error('No heatmaps can be computed here, so there is no report.');
        const engine = (mode === 'server' ? engines.current.server : engines.current.private)!;
        const wanted = reportFindings(prediction.findings, selected);
        const missing = wanted.filter((name) => !view!.maps.has(name));
        if (missing.length) setMessage(`Computing the report's heatmaps (${missing.map((n) => n.replace(/_/g, ' ')).join(', ')})…`);
        const computed = await Promise.all(missing.map((name) => explainFinding(engine, mode, upload, image, view!.method, name, id, true)));
        if (id !== run.current) return;
        if (computed.some((c) => c === null)) throw new Error('The report\'s heatmaps could not be computed, so there is no report.');
        view = { ...view, maps: new Map([...view.maps, ...computed.flatMap((c) => [...c!.maps])]) };
      }
      const input = { card, mode, image, prediction, explanation: view, selected, window: windowing, opacity, colormap };
      const base = `cxr-report-${prediction.image.name.replace(/\.[^.]*$/, '')}`;
      download(kind === 'png' ? await canvasPng(reportCanvas(input)) : await reportPdf(input), `${base}.${kind}`);
      setMessage(`Report downloaded (${kind.toUpperCase()}).`);
    } catch (error) {
      fail((error as Error).message);
    } finally {
      setReporting(false);
    }
  }

  const busy = phase === 'decoding' || phase === 'predicting' || phase === 'explaining';
  const available = mode === 'server' ? (card?.explanationMethods ?? []) : (engines.current.private?.methods ?? ['occlusion']);
  return (
    <main data-image={image?.source ?? ''} data-state={phase} data-report={reporting ? 'preparing' : ''} data-mode={mode} data-analysed-mode={prediction?.mode ?? ''} data-heatmap={explanation ? explanation.method : ''}>
      <header>
        <h1>cxr-lens</h1>
        <p class="notice" role="note">
          <strong>{RESEARCH_NOTICE}</strong> Probabilities and heatmaps come from a research model and must not guide care.
        </p>
        {card ? <ModelCardPanel card={card} /> : <p class="muted">Loading the model card…</p>}
      </header>
      <div class="topbar">
        <FilePicker onFile={(f) => void onFile(f)} disabled={!card || busy} />
        <ModeSwitch mode={mode} onChange={onMode} disabled={!card || busy} privateStatus={privateStatus} />
        <p class={`status ${phase}`} role="status" aria-live="polite">
          {busy && <span class="spinner" aria-hidden="true" />} {message}
        </p>
      </div>
      <PacsPanel ready={!!card} disabled={!card || busy} onOpen={(f) => void onFile(f)} />
      {prediction && (
        <InputChecks
          flags={prediction.inputFlags}
          verdict={prediction.verdict}
          hasDetector={!!card?.inputChecks}
          disabled={busy}
          onShowAnyway={() => upload && image && void analyse(mode, upload, image, method, false, true)}
        />
      )}
      <div class="results">
        <section class="work" aria-label="Image">
          {image ? (
            <>
              <div class="control-row">
                <HeatmapControls methods={card?.explanationMethods ?? []} available={available} method={method} onMethod={onMethod} opacity={opacity} onOpacity={setOpacity} colormap={colormap} onColormap={setColormap} />
                <fieldset class="controls report">
                  <legend>Report</legend>
                  <button type="button" disabled={!prediction || reporting} onClick={() => void onReport('png')} aria-label="Download PNG" title="Download the report as PNG">
                    PNG
                  </button>
                  <button type="button" disabled={!prediction || reporting} onClick={() => void onReport('pdf')} aria-label="Download PDF" title="Download the report as PDF">
                    PDF
                  </button>
                </fieldset>
              </div>
              <Viewer
                image={image}
                windowing={windowing}
                onWindow={setWindowing}
                layer={layer}
                opacity={opacity}
                sideBySide={sideBySide}
                layerLabel={selected && layer ? `${selected.replace(/_/g, ' ')} · ${explanation!.method}` : 'Overlay (no heatmap yet)'}
                toolbar={<DisplayControls windowing={windowing} maxValue={image.maxValue} onWindow={setWindowing} onReset={() => setWindowing(fullWindow(image))} sideBySide={sideBySide} onSideBySide={setSideBySide} />}
              />
              {layer && selected && explanation && <ColourBar colormap={colormap} finding={selected} method={explanation.method} />}
              {prediction && prediction.image.notes.length > 0 && <p class="muted">Image notes: {prediction.image.notes.join('; ')}</p>}
            </>
          ) : (
            <p class="placeholder">No image yet. Nothing is uploaded until you choose a file{mode === 'private' ? ', and in private mode not even then' : ''}.</p>
          )}
        </section>
        <aside class="side">
          {prediction && prediction.verdict !== 'rejected' ? (
            <FindingsList
              findings={prediction.findings}
              card={card}
              selected={selected}
              onSelect={onSelect}
              hasMaps={!!explanation}
              caution={prediction.verdict === 'rejected-shown' ? 'untrusted' : prediction.inputFlags.length > 0 ? 'warning' : null}
            />
          ) : (
            <section class="findings empty" aria-labelledby="findings-title">
              <h2 id="findings-title">Findings</h2>
              <p class="muted">{prediction ? 'None: the input checks rejected this image (reasons above).' : busy ? 'Waiting for the analysis…' : 'Choose an image to see its findings here.'}</p>
            </section>
          )}
        </aside>
      </div>
    </main>
  );
}
