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

type InputProps = FieldProps & InputAttrs & { onValue?: (v: string) => void };

export function TextField({ label, hint, error, onValue, ...input }: InputProps) {
  const id = useId();
  const described = [hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ') || undefined;
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
    </div>
  );
}

type SelectProps = FieldProps & { name?: string; value?: string; required?: boolean; disabled?: boolean } & {
  options: { value: string; label: string }[];
  onValue?: (v: string) => void;
};

export function SelectField({ label, hint, error, options, onValue, ...select }: SelectProps) {
  const id = useId();
  const described = [hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ') || undefined;
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
    </div>
  );
}

type CheckProps = { name?: string; checked?: boolean; disabled?: boolean } & { label: ComponentChildren; hint?: ComponentChildren; onValue?: (v: boolean) => void };

export function CheckboxField({ label, hint, onValue, name, checked, disabled }: CheckProps) {
  const id = useId();
  return (
    <div class="field check">
      <input type="checkbox" id={id} name={name} checked={checked} disabled={disabled} aria-describedby={hint ? `${id}-hint` : undefined} onChange={(e) => onValue?.((e.currentTarget as HTMLInputElement).checked)} />
      <label for={id}>{label}</label>
      {hint && (
        <p class="hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
    </div>
  );
}

/** The API's answer to what the user just did, as the API worded it. */
export function ErrorNote({ error, fields = [] }: { error?: ApiError; fields?: string[] }) {
  if (!error) return null;
  // Field-level issues are shown at their fields; say the rest here.
  const shown = fields.some((f) => error.forField(f));
  return (
    <p class="error-note" role="alert">
      {shown ? 'Please correct the marked fields. ' : ''}
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
