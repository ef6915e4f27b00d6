// Copying commands, URLs and secrets: a button that says it worked (or, where the clipboard is
// not allowed, selects the text so the user can copy it by hand).
import { useRef, useState } from 'preact/hooks';

async function writeClipboard(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

/** `what` names what is copied for screen readers ("Copy Enroll the device"), where several Copy buttons sit together. */
export function CopyButton({ text, label = 'Copy', target, what }: { text: string; label?: string; target?: () => HTMLElement | null; what?: string }) {
  const [state, setState] = useState<'idle' | 'copied' | 'select'>('idle');
  const copy = async () => {
    if (await writeClipboard(text)) setState('copied');
    else {
      const el = target?.();
      if (el) getSelection()?.selectAllChildren(el);
      setState('select');
    }
    setTimeout(() => setState('idle'), 2000);
  };
  return (
    <button type="button" class="copy" onClick={copy} aria-live="polite">
      {state === 'copied' ? 'Copied' : state === 'select' ? 'Selected: press Ctrl+C' : label}
      {what && <span class="visually-hidden"> {what}</span>}
    </button>
  );
}

/** A command or value in monospace with its copy button. */
export function CodeLine({ code, label }: { code: string; label: string }) {
  const ref = useRef<HTMLElement>(null);
  return (
    <div class="code-line" role="group" aria-label={label}>
      <code ref={ref}>{code}</code>
      <CopyButton text={code} what={label} target={() => ref.current} />
    </div>
  );
}

/** A secret the relay shows only once (a new API key, a tunnel password, recovery codes). */
export function OnceSecret({ label, value, children }: { label: string; value: string; children?: preact.ComponentChildren }) {
  const ref = useRef<HTMLElement>(null);
  return (
    <div class="once-secret" role="status">
      <p>
        <strong>{label}</strong> — shown only this once; copy it now.
      </p>
      <div class="code-line">
        <code ref={ref} data-secret>
          {value}
        </code>
        <CopyButton text={value} target={() => ref.current} />
      </div>
      {children}
    </div>
  );
}
