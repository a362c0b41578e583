// Types and validators generated from schemas/ must match the schemas: a schema edited
// without `npm run generate` would leave the code checking an old shape.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { asExpected } from './helpers/checked.js';
import { repo } from './helpers/roots.js';

it('generated files are current with schemas/', async () => {
  const { generate } = asExpected<{ generate: () => Promise<Map<string, string>> }>(await import(join(repo, 'scripts', 'generate-types.mjs')));
  const files = await generate();
  expect(files.size).toBeGreaterThan(0);
  for (const [path, content] of files) {
    expect(readFileSync(join(repo, path), 'utf8'), path).toBe(content);
  }
});
