/**
 * The PACS panel, shown only when the server says it has a PACS (`cxr serve --pacs`): search studies by patient ID,
 * accession number or study date (one day or a range), list them with their CR/DX instances, and open one: its
 * DICOM goes to the viewer like a dropped file (the same findings view), and the result `cxr pacs` stored for it, if
 * any, is shown beside as "stored result from <date>" with its findings and heatmaps. Patient data stays on screen.
 */
import { useEffect, useState } from 'preact/hooks';
import { percent } from '../findings.js';
import { dicomDate, fetchInstance, fetchStoredHeatmap, fetchStoredResult, type PacsInstance, type PacsQuery, type PacsStudy, pacsConfigured, readableDate, searchPacs, type StoredResult } from '../pacs.js';

const ORDER = { positive: 0, negative: 1, none: 2 } as const;

export function PacsPanel(props: { ready: boolean; disabled: boolean; onOpen: (file: File) => void }) {
  const [configured, setConfigured] = useState(false);
  const [query, setQuery] = useState({ patientId: '', accession: '', from: '', to: '' });
  const [studies, setStudies] = useState<PacsStudy[] | null>(null);
  const [truncated, setTruncated] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const [opened, setOpened] = useState<PacsInstance | null>(null);
  const [stored, setStored] = useState<StoredResult | null | 'loading'>(null);
  const [heatmaps, setHeatmaps] = useState<Map<string, string>>(new Map());

  // Asked once the model card has loaded: with --auth, the card's request has asked for the key already.
  useEffect(() => {
    if (props.ready) pacsConfigured().then(setConfigured, () => setConfigured(false));
  }, [props.ready]);
  useEffect(() => () => heatmaps.forEach((url) => URL.revokeObjectURL(url)), [heatmaps]);
  if (!configured) return null;

  async function onSearch(event: Event) {
    event.preventDefault();
    const date = query.from && query.to ? `${dicomDate(query.from)}-${dicomDate(query.to)}` : dicomDate(query.from || query.to);
    const criteria: PacsQuery = { ...(query.patientId.trim() && { patientId: query.patientId.trim() }), ...(query.accession.trim() && { accession: query.accession.trim() }), ...(date && { date }) };
    if (Object.keys(criteria).length === 0) {
      setError('Give a patient ID, an accession number or a date.');
      return;
    }
    setBusy(true);
    setError('');
    try {
      const found = await searchPacs(criteria);
      setStudies(found.studies);
      setTruncated(found.truncated);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  }

  async function onInstance(instance: PacsInstance, study: PacsStudy) {
    setOpened(instance);
    setStored('loading');
    setHeatmaps(new Map());
    setError('');
    const result = fetchStoredResult(instance).then(
      async (found) => {
        setStored(found);
        const drawn = found?.findings.filter((f) => f.heatmap) ?? [];
        const urls = await Promise.all(drawn.map(async (f) => [f.name, await fetchStoredHeatmap(instance, f.name)] as const));
        setHeatmaps(new Map(urls));
      },
      (e: Error) => {
        setStored(null);
        setError(`Stored result: ${e.message}`);
      },
    );
    try {
      const bytes = await fetchInstance(instance);
      // Named for the screen and the report by what the list shows, never by patient data.
      const name = ['PACS', instance.modality, readableDate(study.studyDate), instance.instanceNumber ? `#${instance.instanceNumber}` : ''].filter(Boolean).join(' ');
      props.onOpen(new File([bytes as BlobPart], name));
    } catch (e) {
      setError((e as Error).message);
    }
    await result;
  }

  const field = (name: keyof typeof query) => ({ value: query[name], onInput: (e: Event) => setQuery({ ...query, [name]: (e.currentTarget as HTMLInputElement).value }) });
  return (
    <details class="pacs-panel" open aria-labelledby="pacs-title">
      <summary>
        <h2 id="pacs-title">PACS</h2>
      </summary>
      <form class="pacs-search" onSubmit={(e) => void onSearch(e)}>
        <label>
          Patient ID <input name="patientId" maxLength={64} {...field('patientId')} />
        </label>
        <label>
          Accession <input name="accession" maxLength={16} {...field('accession')} />
        </label>
        <label>
          Study date from <input name="from" type="date" {...field('from')} />
        </label>
        <label>
          to <input name="to" type="date" {...field('to')} />
        </label>
        <button type="submit" disabled={busy}>
          Search
        </button>
      </form>
      {error && (
        <p class="status error" role="alert">
          {error}
        </p>
      )}
      {studies && (
        <div class="pacs-results">
          {studies.length === 0 ? (
            <p class="muted">No study matches.</p>
          ) : (
            <table>
              <thead>
                <tr>
                  <th>Study date</th>
                  <th>Modality</th>
                  <th>Description</th>
                  <th>Patient ID</th>
                  <th>Instances</th>
                </tr>
              </thead>
              <tbody>
                {studies.map((study) => (
                  <tr key={study.studyInstanceUid}>
                    <td>{readableDate(study.studyDate)}</td>
                    <td>{study.modalities.join(', ')}</td>
                    <td>{study.studyDescription}</td>
                    <td>{study.patientId}</td>
                    <td>
                      {study.instances.length === 0 && <span class="muted">no CR/DX images</span>}
                      {study.instances.map((instance) => (
                        <button
                          type="button"
                          key={instance.sop}
                          class={`pacs-instance${opened?.sop === instance.sop ? ' selected' : ''}`}
                          data-stored={String(instance.stored)}
                          disabled={props.disabled}
                          onClick={() => void onInstance(instance, study)}
                          title={instance.seriesDescription || undefined}
                        >
                          {instance.modality}
                          {instance.instanceNumber ? ` #${instance.instanceNumber}` : ''}
                          {instance.stored ? ' · stored result' : ''}
                        </button>
                      ))}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {truncated && <p class="muted">More studies match: narrow the search.</p>}
        </div>
      )}
      {opened && <StoredResultView stored={stored} heatmaps={heatmaps} />}
    </details>
  );
}

function StoredResultView(props: { stored: StoredResult | null | 'loading'; heatmaps: Map<string, string> }) {
  const { stored, heatmaps } = props;
  if (stored === 'loading') return <p class="muted">Looking for a stored result…</p>;
  if (!stored) return <p class="muted stored-none">No stored result in the PACS for this instance (cxr pacs has not analysed it with this model).</p>;
  const findings = [...stored.findings].sort((a, b) => ORDER[a.decision ?? 'none'] - ORDER[b.decision ?? 'none'] || b.probability - a.probability);
  return (
    <section class="stored-result" data-verdict={stored.verdict} aria-label="Stored result">
      <h3>Stored result from {stored.created.replace('T', ' ').replace('Z', ' UTC')}</h3>
      <p class="muted">
        {stored.model.name} · {stored.model.version} · input checks: {stored.verdict}
      </p>
      {stored.refused && <p>{stored.refused}</p>}
      {stored.flags.length > 0 && (
        <ul class="muted">
          {stored.flags.map((flag) => (
            <li key={flag}>{flag}</li>
          ))}
        </ul>
      )}
      {findings.length > 0 && (
        <ol>
          {findings.map((f) => (
            <li key={f.name} data-finding={f.name} data-probability={f.probability} class={f.decision ?? 'none'}>
              {f.name.replace(/_/g, ' ')}: {percent(f.probability)} {f.decision ?? 'no decision'}
            </li>
          ))}
        </ol>
      )}
      {heatmaps.size > 0 && (
        <div class="stored-heatmaps">
          {[...heatmaps].map(([finding, url]) => (
            <figure key={finding}>
              <img src={url} alt={`Stored heatmap of ${finding.replace(/_/g, ' ')}`} data-finding={finding} />
              <figcaption>{finding.replace(/_/g, ' ')}</figcaption>
            </figure>
          ))}
        </div>
      )}
    </section>
  );
}
