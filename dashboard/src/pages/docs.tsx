// API docs: the relay's own OpenAPI document (GET /api/v1/openapi.json) as a browsable reference,
// drawn by openapi-explorer (a web component on lit, from npm, bundled: nothing loads from another
// host, and it fetches no fonts). It is imported here, inside the page, so its ~165 KB (gzipped) cost only
// this page and never the first load. Its colours are our CSS variables (docs.css), so it follows
// the system's dark theme with the rest of the app. Its Execute calls go to this origin with the
// session cookie, as the signed-in user — or with an API key set under Authentication.
import { useEffect, useRef } from 'preact/hooks';
import { get } from '../api.ts';
import { LoadError, Loading, Page } from '../ui/bits.tsx';
import { useLoad } from '../ui/use-load.ts';
import './docs.css';
import explorerCss from './docs-explorer.css?inline';

const SPEC = '/api/v1/openapi.json';

type OpenApiDocument = Record<string, unknown>;

/** The element openapi-explorer defines; loadSpec takes the parsed document. */
interface ExplorerElement extends HTMLElement {
  loadSpec(spec: unknown): Promise<void>;
}

/** Defines <openapi-explorer> (a side effect of the import). */
// @ts-expect-error -- openapi-explorer ships no type declarations; only the element it defines is used.
const defineExplorer = () => import('openapi-explorer');

async function loadReference(signal: AbortSignal): Promise<OpenApiDocument> {
  const [spec] = await Promise.all([get<OpenApiDocument>(SPEC, { signal }), defineExplorer()]);
  return spec;
}

function Reference({ spec }: { spec: OpenApiDocument }) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = document.createElement('openapi-explorer') as ExplorerElement;
    el.setAttribute('server-url', location.origin);
    el.setAttribute('hide-server-selection', 'true');
    // The cookie goes with same-origin requests; nothing else is ever sent it.
    el.setAttribute('fetch-credentials', 'same-origin');
    el.className = 'explorer';
    host.current!.append(el);
    // Its shadow root exists once it is connected; our rules go after its own.
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(explorerCss);
    el.shadowRoot?.adoptedStyleSheets.push(sheet);
    // A copy: the renderer rewrites parts of the document it is given (its servers' URLs).
    void el.loadSpec(structuredClone(spec));
    return () => el.remove();
  }, [spec]);
  return <div class="docs-reference" ref={host} />;
}

export default function DocsPage() {
  const { data, error, reload } = useLoad(loadReference, []);
  return (
    <Page
      title="API docs"
      actions={
        // target=_top is this same tab; it keeps the app's router (which takes every same-origin
        // link without a target) from treating the API's address as one of its pages.
        <a class="button" href={SPEC} target="_top">
          OpenAPI document (JSON)
        </a>
      }
    >
      <p class="docs-intro">
        Every route of this relay's API, with its parameters, bodies and answers. An operation's Execute button calls this relay as you, with your session; to call it as an API key instead, set the key under
        Authentication.
      </p>
      {error ? <LoadError error={error} retry={reload} /> : data ? <Reference spec={data} /> : <Loading what="the API reference" />}
    </Page>
  );
}
