// "Paste text": a text typed on the target by the device, in the target's keyboard layout, so a
// password or a script arrives as the same characters whatever the layout (the device checks the
// whole text first and refuses it naming the first character that layout cannot type). Progress
// comes from the device as it types; Cancel stops it between characters; the outcome says what
// was delivered, where it stopped and why, and which characters went as their ASCII forms.
import { useEffect, useId, useState } from 'preact/hooks';
import type { TypeJob } from '../../../../../shared/api/kvm.ts';
import { get } from '../../../api.ts';
import { Button, ErrorNote, SelectField } from '../../../ui/form.tsx';
import { useLoad } from '../../../ui/use-load.ts';

/** A refusal or failure the device sent for the text (UNTYPEABLE_CHARACTER names the character). */
export interface TypeRefusal {
  code: string;
  message: string;
  char?: string;
  index?: number;
}

const layoutKey = (deviceId: string) => `pirelay.kvm.layout.${deviceId}`;
function rememberedLayout(deviceId: string): string | null {
  try {
    return localStorage.getItem(layoutKey(deviceId));
  } catch {
    return null;
  }
}

/** “ → \" 3 times, as a sentence. */
function substitutions(job: TypeJob): string {
  return job.substitutions.map((s) => `typed ${s.char} as ${s.as} ${s.count === 1 ? 'once' : `${s.count} times`}`).join('; ');
}

function Outcome({ job }: { job: TypeJob }) {
  const subs = job.substitutions.length > 0 && <p>The layout lacks some characters: {substitutions(job)}.</p>;
  if (job.state === 'typing')
    return (
      <div class="type-progress">
        <progress max={job.total} value={job.typed} aria-label="Typing progress" />
        <p>
          Typing… {job.typed} of {job.total} characters
        </p>
      </div>
    );
  if (job.state === 'done')
    return (
      <div class="type-outcome ok">
        <p>
          Typed all {job.total} {job.total === 1 ? 'character' : 'characters'} ({job.layout}).
        </p>
        {subs}
      </div>
    );
  if (job.state === 'cancelled')
    return (
      <div class="type-outcome">
        <p>
          Cancelled after {job.typed} of {job.total} characters.
        </p>
        {subs}
      </div>
    );
  return (
    <div class="type-outcome failed">
      <p>
        Failed at character {(job.error?.at ?? job.typed) + 1} of {job.total} ({job.typed} typed): {job.error?.message ?? 'the device gave no reason'}
        {job.error?.code && <span class="code"> ({job.error.code})</span>}
      </p>
      {subs}
    </div>
  );
}

export function PastePanel({ deviceId, canType, job, refusal, onType, onCancel }: {
  deviceId: string;
  /** The live input socket is open. */
  canType: boolean;
  job: TypeJob | null;
  refusal: TypeRefusal | null;
  onType: (text: string, layout: string) => void;
  onCancel: () => void;
}) {
  const textId = useId();
  const [text, setText] = useState('');
  const [layout, setLayout] = useState(() => rememberedLayout(deviceId) ?? '');
  const layouts = useLoad((signal) => get<{ layouts: { id: string; name: string }[] }>('/api/v1/kvm/layouts', { signal }).then((r) => r.layouts), []);
  const list = layouts.data;

  // The remembered layout if the device still knows it, else US English, else the first.
  useEffect(() => {
    if (list?.length && !list.some((l) => l.id === layout)) setLayout(list.find((l) => l.id === 'en-US')?.id ?? list[0]!.id);
  }, [list]);

  const choose = (id: string) => {
    setLayout(id);
    try {
      localStorage.setItem(layoutKey(deviceId), id);
    } catch {
      // Storage may be off (private mode): the choice then lasts until the tab is left.
    }
  };

  const typing = job?.state === 'typing';
  const refusedAt = refusal?.code === 'UNTYPEABLE_CHARACTER';
  return (
    <section class="panel kvm-paste" aria-labelledby="kvm-paste-title">
      <h2 id="kvm-paste-title">Paste text</h2>
      <p class="hint">Typed on the target key by key, as if on its keyboard in the layout you choose.</p>
      <div class="field">
        <label for={textId}>Text to type</label>
        <textarea
          id={textId}
          rows={4}
          value={text}
          spellcheck={false}
          aria-invalid={refusedAt ? true : undefined}
          aria-describedby={refusal ? `${textId}-error` : undefined}
          onInput={(e) => setText((e.currentTarget as HTMLTextAreaElement).value)}
        />
        {refusal && (
          <p class="field-error" id={`${textId}-error`} role="alert">
            {refusedAt && refusal.char !== undefined ? (
              <>
                The {layout} layout cannot type “{refusal.char === '\n' ? '↵' : refusal.char}”
                {refusal.index !== undefined && ` (character ${refusal.index + 1})`}: nothing was typed.
              </>
            ) : (
              <>
                {refusal.message} <span class="code">({refusal.code})</span>
              </>
            )}
          </p>
        )}
      </div>
      {list ? (
        <SelectField label="Target keyboard layout" hint="The layout the target computer is set to; remembered for this device." value={layout} options={list.map((l) => ({ value: l.id, label: `${l.name} (${l.id})` }))} onValue={choose} />
      ) : layouts.error ? (
        <ErrorNote error={layouts.error} />
      ) : (
        <p class="muted" role="status">
          Loading the keyboard layouts…
        </p>
      )}
      <div class="actions">
        <Button class="primary" disabled={!canType || !text || !layout || typing} onClick={() => onType(text, layout)}>
          Type
        </Button>
        {typing && <Button onClick={onCancel}>Cancel typing</Button>}
        {!canType && <span class="muted">Waiting for the input connection…</span>}
      </div>
      {/* Progress is not announced character by character; the outcome is. */}
      {typing && <Outcome job={job} />}
      <div aria-live="polite">{job && !typing && <Outcome job={job} />}</div>
    </section>
  );
}
