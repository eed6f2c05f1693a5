/**
 * Image globs of the trust policy match the normalized repository name (`host/path`, no tag or digest):
 * `*` stays within one path component, `**` crosses components, `?` is one character of a component.
 * A trailing `/**` also matches the bare prefix, so `ghcr.io/acme/**` covers `ghcr.io/acme/app` and deeper.
 */
export type ImageMatcher = (repositoryName: string) => boolean;

function escapeRegExp(text: string): string {
  return text.replace(/[.+^${}()|[\]\\]/g, '\\$&');
}

export function compileImageGlob(glob: string): ImageMatcher {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i] as string;
    if (ch === '*' && glob[i + 1] === '*') {
      // `/**` at a component boundary may match zero components; elsewhere `**` is any run of characters.
      if (source.endsWith('/') && (i + 2 === glob.length || glob[i + 2] === '/')) {
        source = source.slice(0, -1) + '(?:/.*)?';
      } else {
        source += '.*';
      }
      i++;
    } else if (ch === '*') {
      source += '[^/]*';
    } else if (ch === '?') {
      source += '[^/]';
    } else {
      source += escapeRegExp(ch);
    }
  }
  const re = new RegExp(`^${source}$`);
  return (name) => re.test(name);
}
