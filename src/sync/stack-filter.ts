import type { OrgConfig } from '../config/schema.js';

const compiled = new Map<string, RegExp>();

function escapeRegExp(text: string): string {
  return text.replace(/[.+^${}()|[\]\\]/g, '\\$&');
}

/** `**` spans segments (a leading `**\/` also matches no segment), `*` and `?` stay in one. */
function compile(pattern: string): RegExp {
  let source = '';
  let i = 0;
  while (i < pattern.length) {
    const char = pattern[i] ?? '';
    if (char === '*' && pattern[i + 1] === '*') {
      let end = i;
      while (pattern[end] === '*') end++;
      const atSegmentStart = i === 0 || pattern[i - 1] === '/';
      if (atSegmentStart && pattern[end] === '/') {
        source += '(?:.*/)?';
        i = end + 1;
      } else if (atSegmentStart && end === pattern.length && i > 0) {
        // `project/**` also matches `project` itself.
        source = source.slice(0, -1) + '(?:/.*)?';
        i = end;
      } else {
        source += '.*';
        i = end;
      }
    } else if (char === '*') {
      source += '[^/]*';
      i++;
    } else if (char === '?') {
      source += '[^/]';
      i++;
    } else {
      source += escapeRegExp(char);
      i++;
    }
  }
  return new RegExp(`^${source}$`);
}

/**
 * Case-sensitive glob match of a whole `text`: `*` matches within one `/`-separated
 * segment, `**` across segments, `?` one character other than `/`. Every other character
 * (brackets included) is literal.
 */
export function matchesGlob(pattern: string, text: string): boolean {
  let regex = compiled.get(pattern);
  if (regex === undefined) {
    regex = compile(pattern);
    compiled.set(pattern, regex);
  }
  return regex.test(text);
}

/**
 * The stack selection of one org: patterns match `project/stack`; an empty include list
 * selects every stack; an exclude match always wins over an include match.
 */
export function stackFilter(org: OrgConfig): (project: string, stack: string) => boolean {
  const include = [...org.include];
  const exclude = [...org.exclude];
  return (project, stack) => {
    const name = `${project}/${stack}`;
    if (exclude.some((pattern) => matchesGlob(pattern, name))) return false;
    return include.length === 0 || include.some((pattern) => matchesGlob(pattern, name));
  };
}
