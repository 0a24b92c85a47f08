/**
 * multipart/related bodies as DICOMweb uses them (PS3.18 8.6): WADO-RS answers one part per instance, STOW-RS sends
 * one. Pure; every malformed body is an error saying what was wrong.
 */
import { randomBytes } from 'node:crypto';

/** The boundary parameter of a multipart Content-Type header, or an error naming the header. */
export function boundaryOf(contentType: string | null): string {
  if (!contentType || !/^\s*multipart\/related\b/i.test(contentType)) throw new Error(`expected a multipart/related answer, got Content-Type ${JSON.stringify(contentType)}`);
  const match = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const boundary = match?.[1] ?? match?.[2];
  if (!boundary) throw new Error(`multipart/related answer without a boundary (Content-Type ${JSON.stringify(contentType)})`);
  return boundary;
}

export interface Part {
  headers: Record<string, string>;
  body: Uint8Array;
}

/** The parts of a multipart body; throws when the delimiters or a part's header block are missing. */
export function parseMultipart(body: Uint8Array, boundary: string): Part[] {
  const buffer = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Part[] = [];
  let at = buffer.indexOf(delimiter);
  if (at < 0) throw new Error('multipart body has no boundary delimiter');
  for (;;) {
    let start = at + delimiter.length;
    if (buffer[start] === 0x2d && buffer[start + 1] === 0x2d) return parts; // "--": the close delimiter
    if (buffer[start] === 0x0d && buffer[start + 1] === 0x0a) start += 2;
    const next = buffer.indexOf(delimiter, start);
    if (next < 0) throw new Error(`multipart body ends inside part ${parts.length + 1} (no closing delimiter)`);
    // The CRLF before a delimiter belongs to the delimiter (RFC 2046), not to the part's bytes.
    const end = buffer[next - 2] === 0x0d && buffer[next - 1] === 0x0a ? next - 2 : next;
    const split = buffer.indexOf('\r\n\r\n', start);
    if (split < 0 || split > end) throw new Error(`multipart part ${parts.length + 1} has no header block`);
    const headers: Record<string, string> = {};
    for (const line of buffer.subarray(start, split).toString('latin1').split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    parts.push({ headers, body: new Uint8Array(buffer.buffer, buffer.byteOffset + split + 4, end - split - 4) });
    at = next;
  }
}

/** A multipart/related body of DICOM files, and the Content-Type header that goes with it. */
export function buildMultipart(files: readonly Uint8Array[], type = 'application/dicom'): { body: Buffer; contentType: string } {
  const boundary = `cxr-lens-${randomBytes(12).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const file of files) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: ${type}\r\n\r\n`), Buffer.from(file.buffer, file.byteOffset, file.byteLength), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/related; type="${type}"; boundary=${boundary}` };
}
