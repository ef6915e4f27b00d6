// Small pieces every page uses: the page frame with its heading, empty states that say what to
// do, a relative time with the exact one on hover, status badges, and a loading line.
import type { ComponentChildren } from 'preact';
import { useEffect } from 'preact/hooks';
import type { ApiError } from '../api.ts';

export function Page({ title, actions, children }: { title: string; actions?: ComponentChildren; children: ComponentChildren }) {
  useEffect(() => {
    document.title = `${title} · pirelay`;
  }, [title]);
  return (
    <section class="page" aria-labelledby="page-title">
      <header class="page-head">
        <h1 id="page-title" tabIndex={-1}>
          {title}
        </h1>
        {actions && <div class="actions">{actions}</div>}
      </header>
      {children}
    </section>
  );
}

export function Empty({ title, children }: { title: string; children?: ComponentChildren }) {
  return (
    <div class="empty">
      <p class="empty-title">{title}</p>
      {children && <div class="empty-body">{children}</div>}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="loading" role="status">
      <span class="spinner" aria-hidden="true" /> Loading {what}…
    </p>
  );
}

/** A load that failed: the API's message, and a way to try again. */
export function LoadError({ error, retry }: { error: ApiError; retry?: () => void }) {
  return (
    <div class="error-note" role="alert">
      <p>
        {error.message} <span class="code">({error.code})</span>
      </p>
      {retry && (
        <button type="button" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

const units: [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * 86400],
  ['month', 30 * 86400],
  ['day', 86400],
  ['hour', 3600],
  ['minute', 60],
  ['second', 1],
];
const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

export function relative(iso: string, now = Date.now()): string {
  const s = (new Date(iso).getTime() - now) / 1000;
  for (const [unit, size] of units) if (Math.abs(s) >= size || unit === 'second') return rtf.format(Math.round(s / size), unit);
  return iso;
}

export function Time({ iso, empty = 'never' }: { iso: string | null | undefined; empty?: string }) {
  if (!iso) return <span class="muted">{empty}</span>;
  return (
    <time dateTime={iso} title={new Date(iso).toLocaleString()}>
      {relative(iso)}
    </time>
  );
}

export type Status = 'online' | 'offline' | 'pending' | 'rejected' | 'revoked' | string;

export function StatusBadge({ status }: { status: Status }) {
  return (
    <span class={`badge badge-${status}`}>
      <span class="dot" aria-hidden="true" />
      {status}
    </span>
  );
}
