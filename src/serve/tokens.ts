/**
 * API keys for `cxr serve --auth FILE`: random bearer tokens, of which the file keeps only SHA-256 hashes (a copy of
 * the file does not give access), one per line with a label saying whose it is:
 *
 *     # cxr-lens API tokens: sha256 of each token, then its label
 *     9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  pacs-bridge
 *
 * A token is 32 random bytes, so a plain (fast) hash is enough: there is nothing to guess by trying passwords.
 */
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync } from 'node:fs';

const TOKEN_PREFIX = 'cxr_';
const LINE = /^([0-9a-f]{64})\s+(\S.*)$/;
const LABEL = /^[\w.@-]{1,64}$/;
const HEADER = '# cxr-lens API tokens: sha256 of each token, then its label (cxr token create)\n';

export interface TokenFile {
  /** Hash -> label. */
  hashes: Map<string, string>;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Reads a token file for serving; throws naming the file and line for anything that is not a hash and a label, or for a file without tokens. */
export function readTokenFile(path: string): TokenFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read the token file ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const hashes = parseTokenFile(text, path);
  if (hashes.size === 0) throw new Error(`the token file ${path} holds no tokens: create one with \`cxr token create --file ${path} --label NAME\``);
  return { hashes };
}

/** Makes a token, appends its hash and label to `path` (created readable by its owner only), returns the token. */
export function createToken(path: string, label: string): string {
  if (!LABEL.test(label)) throw new Error(`a token label is 1-64 letters, digits or . _ @ - (got "${label.slice(0, 80)}")`);
  let existing: string | undefined;
  try {
    existing = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read the token file ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  // A file whose tokens were all revoked (only comments left) takes a new one like an empty file.
  if (existing !== undefined && [...parseTokenFile(existing, path).values()].includes(label)) {
    throw new Error(`${path} already has a token labelled "${label}"; choose another label`);
  }
  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  appendFileSync(path, `${existing === undefined ? HEADER : ''}${hashToken(token)}  ${label}\n`, { mode: 0o600 });
  return token;
}

/** Hash -> label of every token line; throws naming the line that is not a hash and a label. */
function parseTokenFile(text: string, path: string): Map<string, string> {
  const hashes = new Map<string, string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const match = LINE.exec(line);
    if (!match) {
      throw new Error(`${path}, line ${i + 1}: expected "<sha256 hex of a token> <label>" (the file holds hashes made by \`cxr token create\`, never tokens)`);
    }
    hashes.set(match[1], match[2].trim());
  });
  return hashes;
}
