/**
 * Previous/next over the API's opaque page tokens. The API only hands out the next token, so the
 * tokens of the pages seen so far are remembered to go back.
 */
import { useRef } from 'react';
import { navigate } from '../lib/router.tsx';

export interface PageTokens {
  readonly seen: (string | undefined)[];
}

/** Tokens of the pages seen so far; forgotten when `resetKey` (the filter and sort) changes. */
export function usePageTokens(resetKey = ''): PageTokens {
  const ref = useRef<{ key: string; tokens: PageTokens }>({ key: resetKey, tokens: { seen: [undefined] } });
  if (ref.current.key !== resetKey) ref.current = { key: resetKey, tokens: { seen: [undefined] } };
  return ref.current.tokens;
}

export function Pager({
  pages,
  current,
  next,
  hrefFor,
  label,
}: {
  readonly pages: PageTokens;
  readonly current: string | undefined;
  readonly next: string | undefined;
  readonly hrefFor: (token: string | undefined) => string;
  readonly label: string;
}) {
  let index = pages.seen.indexOf(current);
  if (index < 0) {
    pages.seen.push(current);
    index = pages.seen.length - 1;
  }
  if (next !== undefined && pages.seen[index + 1] !== next) pages.seen.splice(index + 1, pages.seen.length, next);
  const previous = index > 0 ? pages.seen[index - 1] : undefined;
  if (index === 0 && next === undefined) return null;
  return (
    <nav className="pager" aria-label={label}>
      <button type="button" disabled={index === 0} onClick={() => navigate(hrefFor(previous))}>
        ← Previous
      </button>
      <span>Page {index + 1}</span>
      <button type="button" disabled={next === undefined} onClick={() => navigate(hrefFor(next))}>
        Next →
      </button>
    </nav>
  );
}
