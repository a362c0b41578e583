// Reading the JSON files an operator names (plan files, the runner's config): one place that
// turns "missing" and "not JSON" into a line naming the file.
import { readFileSync } from 'node:fs';

/** The parsed content of `file`; errors read "<label> <file>: ENOENT" or "…: not valid JSON (…)". */
export function readJsonFile(file: string, label: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`${label} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${label} ${file}: not valid JSON (${(error as Error).message})`);
  }
}
