/**
 * Float32 arrays stored in model metadata as base64 text (the input checks' small fitted networks and Gaussians).
 * btoa/atob exist in Node 20 and in browsers, so private mode reads the same numbers.
 */

export function encodeFloats(values: Float32Array): string {
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  let text = '';
  // In chunks: spreading a large array into one call would overflow the stack.
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/** The floats of `text`; `expected` (a count) guards against a mismatched or damaged record. */
export function decodeFloats(text: string, expected: number, what: string): Float32Array {
  const binary = atob(text);
  if (binary.length !== expected * 4) throw new Error(`${what}: ${binary.length} bytes stored, ${expected} float32 values expected`);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}
