// The key combinations a browser keeps for itself or the local OS would take (Ctrl-Alt-Del,
// Alt-Tab, the Linux consoles' Ctrl-Alt-Fn, PrtSc…), sent as one keystroke each: pressed with
// their modifiers and released on the device, so none can stay held.
import type { ModifierCode } from '../../../../../shared/hid/keycodes.ts';

export interface Shortcut {
  label: string;
  code: string;
  modifiers: ModifierCode[];
}

const CTRL_ALT: ModifierCode[] = ['ControlLeft', 'AltLeft'];

export const SHORTCUT_GROUPS: { title: string; shortcuts: Shortcut[] }[] = [
  {
    title: 'System',
    shortcuts: [
      { label: 'Ctrl+Alt+Del', code: 'Delete', modifiers: CTRL_ALT },
      { label: 'Alt+Tab', code: 'Tab', modifiers: ['AltLeft'] },
      { label: 'Alt+F4', code: 'F4', modifiers: ['AltLeft'] },
      { label: 'Meta (Windows / Command key) alone', code: 'MetaLeft', modifiers: [] },
      { label: 'Ctrl+Esc', code: 'Escape', modifiers: ['ControlLeft'] },
      { label: 'Print Screen', code: 'PrintScreen', modifiers: [] },
      { label: 'Alt+Print Screen', code: 'PrintScreen', modifiers: ['AltLeft'] },
      { label: 'Ctrl+Alt+Backspace', code: 'Backspace', modifiers: CTRL_ALT },
    ],
  },
  {
    title: 'Linux consoles',
    shortcuts: Array.from({ length: 12 }, (_, i) => ({ label: `Ctrl+Alt+F${i + 1}`, code: `F${i + 1}`, modifiers: CTRL_ALT })),
  },
];
