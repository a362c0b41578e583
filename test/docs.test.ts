// The documentation is checked, not hoped for: the man pages name every verb, stage and flag the
// code's usage texts name, and groff renders them without a warning; every relative link of the
// README and docs/ leads to a file that exists, and a link to a heading leads to that heading.
// Needs neither root nor a namespace: it reads files and runs groff.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PRECREATE_STAGE } from '../src/oci/precreate.js';
import { STAGES } from '../src/oci/stages.js';
import { repo } from './helpers/roots.js';

const read = (path: string) => readFileSync(join(repo, path), 'utf8');

/** The text of `const USAGE = \`…\`` (or '…') in a source file. */
function usageIn(path: string): string {
  const usage = /const USAGE =\s*(?:`([\s\S]*?)`|'([^']*)');/.exec(read(path));
  expect(usage, `${path} defines USAGE`).not.toBeNull();
  return usage![1] ?? usage![2]!;
}

const flagsIn = (text: string) => [...new Set([...text.matchAll(/--[a-z][a-z-]*/g)].map((match) => match[0]))];

/**
 * The verbs of `mountat`'s usage, each with the flags on its lines: a verb's line starts two spaces
 * in ("  exec   --root DIR …"), its continuation lines further in. Lines of the common options
 * ("  --plan FILE …") belong to no verb.
 */
function verbsOf(usage: string): Map<string, string[]> {
  const verbs = new Map<string, string[]>();
  let current: string | undefined;
  for (const line of usage.split('\n')) {
    const verb = /^ {2}([a-z][a-z-]*)(?: |$)/.exec(line)?.[1];
    if (verb !== undefined) current = verb;
    else if (!/^ {3,}\S/.test(line)) current = undefined;
    if (current !== undefined) verbs.set(current, [...(verbs.get(current) ?? []), ...flagsIn(line)]);
  }
  return verbs;
}

/** A man page's source as the words it shows: `\-` is a hyphen, font changes and `\&` are nothing. */
function roffText(source: string): string {
  return source
    .replace(/\\-/g, '-')
    .replace(/\\f[BIRP]/g, '')
    .replace(/\\&/g, '');
}

/** The text of one section (`.SH NAME`) or subsection (`.SS NAME`), up to the next heading of either. */
function sectionOf(text: string, macro: 'SH' | 'SS', name: string): string | undefined {
  const lines = text.split('\n');
  const start = lines.findIndex((line) => line === `.${macro} ${name}` || line === `.${macro} "${name}"`);
  if (start === -1) return undefined;
  const end = lines.findIndex((line, index) => index > start && /^\.S[HS] /.test(line));
  return lines.slice(start + 1, end === -1 ? undefined : end).join('\n');
}

describe('man/mountat.1', () => {
  const usage = usageIn('src/cli/main.ts');
  const page = roffText(read('man/mountat.1'));
  const verbs = verbsOf(usage);

  it("has every verb of src/cli/main.ts's usage, in the synopsis and a section with each of its flags", () => {
    expect([...verbs.keys()]).toEqual(expect.arrayContaining(['doctor', 'mount', 'umount', 'exec', 'runner', 'hook-server', 'probe']));
    const synopsis = sectionOf(page, 'SH', 'SYNOPSIS');
    for (const [verb, flags] of verbs) {
      expect(synopsis, `SYNOPSIS names mountat ${verb}`).toContain(`.SY "mountat ${verb}"`);
      const section = sectionOf(page, 'SS', verb);
      expect(section, `a section .SS ${verb}`).toBeDefined();
      for (const flag of flags) expect(section, `${verb}'s section names ${flag}`).toMatch(new RegExp(`(^|\\s)${flag}(\\s|$)`, 'm'));
    }
  });

  it('describes each common option of the usage', () => {
    const common = usage.split('\n').flatMap((line) => /^ {2}(--[a-z][a-z-]*)/.exec(line)?.[1] ?? []);
    expect(common.length).toBeGreaterThan(0);
    for (const flag of common) expect(page, flag).toMatch(new RegExp(`^\\.(BI|BR|B) ${flag}( |$)`, 'm'));
  });
});

describe('man/mountat-hook.1', () => {
  const usage = usageIn('src/oci/hook-main.ts');
  const page = roffText(read('man/mountat-hook.1'));

  it("describes every stage the hook knows, and podman's precreate", () => {
    const stages = sectionOf(page, 'SH', 'STAGES');
    expect(stages).toBeDefined();
    for (const stage of [...STAGES, PRECREATE_STAGE]) expect(stages, stage).toMatch(new RegExp(`^\\.BR? (.*[ "])?${stage}([ ",]|$)`, 'm'));
  });

  it("describes every flag of src/oci/hook-main.ts's usage", () => {
    const options = sectionOf(page, 'SH', 'OPTIONS');
    const flags = flagsIn(usage);
    expect(flags).toEqual(expect.arrayContaining(['--plan', '--state-dir', '--root-fd', '--proc-pidns', '--hook-socket']));
    for (const flag of flags) expect(options, flag).toMatch(new RegExp(`^\\.(BI|BR|B) ${flag}( |$)`, 'm'));
  });
});

describe('man pages', () => {
  it.each(['man/mountat.1', 'man/mountat-hook.1'])('%s renders with no groff warning', (page) => {
    const result = spawnSync('groff', ['-man', '-ww', '-z', join(repo, page)], { encoding: 'utf8' });
    expect(result.error, 'groff (Debian: groff-base) must be installed').toBeUndefined();
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});

// Links: what the pages say, without what code blocks and code spans show.
const MARKDOWN = [
  'README.md',
  'CONTRIBUTING.md',
  'SECURITY.md',
  'CHANGELOG.md',
  ...readdirSync(join(repo, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
];

function prose(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
}

/** The anchors of a Markdown file: explicit `<a id>`s, and each heading's slug as GitHub makes it. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set([...markdown.matchAll(/<a id="([^"]+)"><\/a>/g)].map((match) => match[1]!));
  const seen = new Map<string, number>();
  for (const [, heading] of markdown.replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6} +(.+?) *#* *$/gm)) {
    const slug = heading!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

describe('relative links', () => {
  it.each(MARKDOWN)('of %s lead to files and headings that exist', (path) => {
    const broken: string[] = [];
    for (const [, target] of prose(read(path)).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target!)) continue; // https:, mailto:
      const [file = '', anchor] = target!.split('#');
      const absolute = file === '' ? join(repo, path) : resolve(dirname(join(repo, path)), file);
      if (!existsSync(absolute)) {
        broken.push(`${target}: no ${relative(repo, absolute)}`);
        continue;
      }
      if (anchor !== undefined && absolute.endsWith('.md') && !anchorsOf(readFileSync(absolute, 'utf8')).has(anchor)) {
        broken.push(`${target}: no heading or anchor #${anchor} in ${relative(repo, absolute)}`);
      }
    }
    expect(broken).toEqual([]);
  });
});
