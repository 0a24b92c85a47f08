import { readFileSync } from 'node:fs';

/** The cxr-lens version (package.json, two folders above the compiled dist/src/version.js), written into every model. */
export const VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;
