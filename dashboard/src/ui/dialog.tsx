// Confirmation before something that cannot be undone (revoke, delete, reject), on the native
// <dialog>: modal, focus kept inside, Escape cancels, and focus returns to the button after.
import type { ComponentChildren } from 'preact';
import { useId, useRef } from 'preact/hooks';
import { Button, ErrorNote } from './form.tsx';
import { useAction } from './use-load.ts';

export function ConfirmButton({ label, title, children, confirmLabel, onConfirm, danger = true, class: cls }: {
  label: ComponentChildren;
  title: string;
  children?: ComponentChildren;
  confirmLabel?: string;
  onConfirm: () => Promise<unknown>;
  danger?: boolean;
  class?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const action = useAction(async () => {
    await onConfirm();
    return true;
  });
  const confirm = async () => {
    if (await action.run()) ref.current?.close();
  };
  return (
    <>
      <button type="button" class={cls ?? (danger ? 'danger' : undefined)} onClick={() => ref.current?.showModal()}>
        {label}
      </button>
      <dialog ref={ref} aria-labelledby={titleId} onClose={() => action.clearError()}>
        <form method="dialog" class="dialog-body">
          <h2 id={titleId}>{title}</h2>
          {children}
          <ErrorNote error={action.error} />
          <div class="actions">
            <button type="submit" value="cancel">
              Cancel
            </button>
            <Button class={danger ? 'danger' : 'primary'} busy={action.busy} onClick={confirm}>
              {confirmLabel ?? title}
            </Button>
          </div>
        </form>
      </dialog>
    </>
  );
}
