/**
 * A page's frame: its title (document and heading) and focus on the heading after a navigation,
 * so keyboard and screen-reader users land at the new content rather than on the old link.
 */
import { useEffect, useRef, type ReactNode } from 'react';

let navigated = false;
/** Called by the shell when the location changes after the first render. */
export function markNavigation(): void {
  navigated = true;
}

export function Page({ title, actions, children }: { readonly title: string; readonly actions?: ReactNode; readonly children: ReactNode }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · modelplane`;
  }, [title]);
  useEffect(() => {
    if (navigated) heading.current?.focus();
  }, []);
  return (
    <>
      <div className="page-head">
        <h1 tabIndex={-1} ref={heading}>
          {title}
        </h1>
        {actions !== undefined && <div className="page-actions">{actions}</div>}
      </div>
      {children}
    </>
  );
}

export function Loading({ what }: { readonly what: string }) {
  return (
    <p className="loading" role="status">
      Loading {what}…
    </p>
  );
}

export function Section({ title, children, id }: { readonly title: string; readonly children: ReactNode; readonly id?: string }) {
  const headingId = `${id ?? title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-heading`;
  return (
    <section className="section" aria-labelledby={headingId} id={id}>
      <h2 id={headingId}>{title}</h2>
      {children}
    </section>
  );
}
