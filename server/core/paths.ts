// Where the project's own files (prisma/, web/dist/) are at run time. Found by walking up to the
// folder holding package.json rather than by a fixed `../..`: the same modules run as TypeScript
// from server/ (`npm start`) and compiled into dist/server/ (the image), at different depths.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`No package.json above ${from}`);
  }
}

export const projectRoot = findRoot(path.dirname(fileURLToPath(import.meta.url)));
