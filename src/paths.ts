/**
 * The package's root folder (where package.json, `ui/dist` and `node_modules` are). This module sits
 * one level below the root in every layout the code runs from: `src/` (sources through tsx) and
 * `dist/` (the bundle, whose files are all in that one folder), so the root is its parent.
 */
import path from 'node:path';

export const PACKAGE_ROOT: string = path.resolve(import.meta.dirname, '..');
