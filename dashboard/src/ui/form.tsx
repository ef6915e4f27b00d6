// Form controls with their labels, hints and errors wired for screen readers: every input has a
// visible <label>, a field's error (the API's message for that field) is announced and linked
// with aria-describedby, and a form's error says what the API said, beside the button that caused it.
import type { ButtonHTMLAttributes, ComponentChildren, InputHTMLAttributes } from 'preact';

/** The input attributes the pages use (preact's own input type is a union that does not spread). */
interface InputAttrs {
  name?: string;
  type?: 'text' | 'password' | 'number' | 'email' | 'url' | 'search' | 'datetime-local' | 'date';
  value?: string | number;
  checked?: boolean;
  required?: boolean;
  disabled?: boolean;
  readOnly?: boolean;
  autoFocus?: boolean;
  autoComplete?: string;
  inputMode?: 'text' | 'numeric' | 'decimal' | 'email' | 'search' | 'url' | 'tel' | 'none';
  placeholder?: string;
  pattern?: string;
  min?: number | string;
  max?: number | string;
  step?: number | string;
  maxLength?: number;
  spellcheck?: boolean;
  class?: string;
}
import { useId } from 'preact/hooks';
import type { ApiError } from '../api.ts';

interface FieldProps {
  label: string;
  hint?: ComponentChildren;
  error?: string;
}

/** The ids of a control's hint and error, for its aria-describedby. */
const describedBy = (id: string, hint?: ComponentChildren, error?: string) => [hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ') || undefined;

/** A control's hint and its error (announced), under it. */
function FieldNotes({ id, hint, error }: { id: string; hint?: ComponentChildren; error?: string }) {
  return (
    <>
      {hint && (
        <p class="hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
      {error && (
        <p class="field-error" id={`${id}-error`} role="alert">
          {error}
        </p>
      )}
    </>
  );
}

type InputProps = FieldProps & InputAttrs & { onValue?: (v: string) => void };

export function TextField({ label, hint, error, onValue, ...input }: InputProps) {
  const id = useId();
  const described = describedBy(id, hint, error);
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <input
        id={id}
        aria-invalid={error ? true : undefined}
        aria-describedby={described}
        {...(input as InputHTMLAttributes<HTMLInputElement>)}
        onInput={(e) => onValue?.((e.currentTarget as HTMLInputElement).value)}
      />
      <FieldNotes id={id} hint={hint} error={error} />
    </div>
  );
}

type SelectProps = FieldProps & { name?: string; value?: string; required?: boolean; disabled?: boolean } & {
  options: { value: string; label: string }[];
  onValue?: (v: string) => void;
};

export function SelectField({ label, hint, error, options, onValue, ...select }: SelectProps) {
  const id = useId();
  const described = describedBy(id, hint, error);
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <select id={id} aria-invalid={error ? true : undefined} aria-describedby={described} {...select} onChange={(e) => onValue?.((e.currentTarget as HTMLSelectElement).value)}>
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
      <FieldNotes id={id} hint={hint} error={error} />
    </div>
  );
}

type CheckProps = { name?: string; checked?: boolean; disabled?: boolean } & { label: ComponentChildren; hint?: ComponentChildren; onValue?: (v: boolean) => void };

export function CheckboxField({ label, hint, onValue, name, checked, disabled }: CheckProps) {
  const id = useId();
  return (
    <div class="field check">
      <input type="checkbox" id={id} name={name} checked={checked} disabled={disabled} aria-describedby={describedBy(id, hint)} onChange={(e) => onValue?.((e.currentTarget as HTMLInputElement).checked)} />
      <label for={id}>{label}</label>
      <FieldNotes id={id} hint={hint} />
    </div>
  );
}

/** The API's answer to what the user just did, as the API worded it. */
export function ErrorNote({ error, fields = [] }: { error?: ApiError; fields?: string[] }) {
  if (!error) return null;
  // When the API named the fields, their own messages say it; the request-level message adds nothing.
  if (fields.some((f) => error.forField(f)))
    return (
      <p class="error-note" role="alert">
        Please correct the marked fields.
      </p>
    );
  return (
    <p class="error-note" role="alert">
      {error.message}
      {error.code && error.code !== 'NETWORK_ERROR' ? <span class="code"> ({error.code})</span> : null}
    </p>
  );
}

export function Button({ busy, children, busyLabel, ...rest }: ButtonHTMLAttributes<HTMLButtonElement> & { busy?: boolean; busyLabel?: string }) {
  return (
    <button type="button" {...rest} disabled={busy || rest.disabled} aria-busy={busy ? true : undefined}>
      {busy ? (
        <>
          <span class="spinner" aria-hidden="true" />
          {busyLabel ?? children}
        </>
      ) : (
        children
      )}
    </button>
  );
}
