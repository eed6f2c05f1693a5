/**
 * `WWW-Authenticate` parsing per RFC 7235 section 4.1: one or more challenges, each a scheme followed by a
 * token68 or comma-separated auth-params whose values are tokens or quoted strings. Quoted values may contain
 * commas (`scope="repository:a:pull,push"`) and backslash escapes.
 */

export interface Challenge {
  /** Lower-case scheme, e.g. `bearer`, `basic`. */
  scheme: string;
  /** Parameters by lower-case name; a token68 is stored under ''. */
  params: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/;
const TOKEN68_AFTER_SCHEME = /^\s+([A-Za-z0-9._~+/-]+=*)\s*(?:,|$)/;

/** Reads a quoted-string starting at `text[0] === '"'`; returns the value and the rest after the closing quote. */
function readQuoted(text: string): [string, string] {
  let value = '';
  let i = 1;
  while (i < text.length && text[i] !== '"') {
    if (text[i] === '\\' && i + 1 < text.length) i++;
    value += text[i];
    i++;
  }
  return [value, text.slice(i + 1)];
}

export function parseChallenges(header: string | undefined): Challenge[] {
  const out: Challenge[] = [];
  let rest = header ?? '';
  let current: Challenge | undefined;
  for (;;) {
    rest = rest.replace(/^[\s,]+/, '');
    const name = TOKEN.exec(rest)?.[0];
    if (!name) break; // end, or malformed: keep what parsed so far
    rest = rest.slice(name.length);
    const equals = /^\s*=\s*/.exec(rest);
    if (current && equals) {
      rest = rest.slice(equals[0].length);
      let value: string;
      if (rest.startsWith('"')) [value, rest] = readQuoted(rest);
      else {
        value = TOKEN.exec(rest)?.[0] ?? '';
        rest = rest.slice(value.length);
      }
      current.params[name.toLowerCase()] = value;
      continue;
    }
    current = { scheme: name.toLowerCase(), params: {} };
    out.push(current);
    const token68 = TOKEN68_AFTER_SCHEME.exec(rest);
    if (token68) {
      current.params[''] = token68[1] ?? '';
      rest = rest.slice(token68[0].length);
    }
  }
  return out;
}
