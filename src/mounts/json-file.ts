// Reading the JSON files an operator names (plan files, the runner's config): one place that
// turns "missing" and "not JSON" into a line naming the file.
import { readFileSync } from 'node:fs';
import { errnoCodeOf, messageOf, MountatError } from '../base/index.js';

/**
 * The parsed content of `file`; errors (invalid input: the file named is the operator's to fix)
 * read "<label> <file>: ENOENT" or "…: not valid JSON (…)".
 */
export function readJsonFile(file: string, label: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new MountatError('invalid-input', `${label} ${file}: ${errnoCodeOf(error) ?? messageOf(error)}`, { cause: error });
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new MountatError('invalid-input', `${label} ${file}: not valid JSON (${messageOf(error)})`, { cause: error });
  }
}
