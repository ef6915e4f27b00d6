// The permission picker of the role editor. It offers the relay's own catalogue
// (GET /api/v1/permissions, read from the routes' declarations), grouped by resource with an
// "all of <resource>" wildcard per group and "*" above them, and lets you tick only what you hold
// yourself — the relay refuses to grant anything else, and when it does (your permissions
// changed since the page loaded) its message is shown right below the picker.
import { useId } from 'preact/hooks';
import type { ApiError } from '../../api.ts';
import { can } from '../../session.ts';
import { LoadError, Loading } from '../../ui/bits.tsx';
import { CheckboxField, ErrorNote } from '../../ui/form.tsx';
import type { Loaded } from '../../ui/use-load.ts';
import type { PermissionEntry } from '../../../../shared/api/permissions.ts';

const NOT_HELD = 'You do not hold it, so you cannot grant it.';

interface Group {
  resource: string;
  all?: PermissionEntry;
  actions: PermissionEntry[];
}

function groupsOf(catalogue: PermissionEntry[]): { everything?: PermissionEntry; groups: Group[] } {
  const groups = new Map<string, Group>();
  let everything: PermissionEntry | undefined;
  for (const e of catalogue) {
    if (e.resource === '*') {
      everything = e;
      continue;
    }
    const g = groups.get(e.resource) ?? { resource: e.resource, actions: [] };
    if (e.wildcard) g.all = e;
    else g.actions.push(e);
    groups.set(e.resource, g);
  }
  return { everything, groups: [...groups.values()] };
}

function Check({ entry, label, checked, covered, onValue }: { entry: PermissionEntry; label: string; checked: boolean; covered: boolean; onValue: (v: boolean) => void }) {
  const held = can(entry.permission);
  return (
    <CheckboxField
      name="permission"
      label={label}
      checked={checked || covered}
      disabled={covered || (!held && !checked)}
      onValue={onValue}
      hint={covered ? 'Included in a wildcard you picked.' : held ? entry.description : `${NOT_HELD} ${entry.description}`}
    />
  );
}

export function PermissionPicker({ catalogue, value, onChange, error }: {
  catalogue: Loaded<PermissionEntry[]>;
  value: string[];
  onChange: (next: string[]) => void;
  /** The relay's answer to saving: a refusal names what was not held in details.missing. */
  error?: ApiError;
}) {
  const id = useId();
  if (catalogue.error) return <LoadError error={catalogue.error} retry={catalogue.reload} />;
  if (!catalogue.data) return <Loading what="the permissions" />;
  const { everything, groups } = groupsOf(catalogue.data);
  const picked = new Set(value);
  const all = picked.has('*');
  const known = new Set(catalogue.data.map((e) => e.permission));
  // What the role already holds that no route checks now (kept, so saving loses nothing silently).
  const others = value.filter((p) => !known.has(p));
  const set = (permission: string, on: boolean, drop: (p: string) => boolean = () => false) => {
    const next = value.filter((p) => p !== permission && !(on && drop(p)));
    onChange(on ? [...next, permission] : next);
  };
  const missing = Array.isArray(error?.details.missing) ? (error!.details.missing as string[]) : [];
  return (
    <fieldset class="permission-picker" aria-describedby={`${id}-picked`}>
      <legend>Permissions</legend>
      {everything && (
        <Check
          entry={everything}
          label="Everything (*)"
          checked={all}
          covered={false}
          onValue={(on) => set('*', on, () => true)}
        />
      )}
      <div class="perm-groups">
        {groups.map((g) => {
          const wholeResource = `${g.resource}:*`;
          const allOf = picked.has(wholeResource);
          return (
            <fieldset key={g.resource} class="perm-group">
              <legend>{g.resource}</legend>
              {g.all && (
                <Check
                  entry={g.all}
                  label={`All of ${g.resource} (${wholeResource})`}
                  checked={allOf}
                  covered={all}
                  onValue={(on) => set(wholeResource, on, (p) => p.startsWith(`${g.resource}:`))}
                />
              )}
              {g.actions.map((e) => (
                <Check key={e.permission} entry={e} label={e.permission} checked={picked.has(e.permission)} covered={all || allOf} onValue={(on) => set(e.permission, on)} />
              ))}
            </fieldset>
          );
        })}
        {others.length > 0 && (
          <fieldset class="perm-group">
            <legend>Other permissions</legend>
            <p class="hint">This role holds these, but no route of this relay checks them.</p>
            {others.map((p) => (
              <CheckboxField key={p} name="permission" label={p} checked onValue={(on) => set(p, on)} />
            ))}
          </fieldset>
        )}
      </div>
      <p class="hint" id={`${id}-picked`} aria-live="polite">
        {value.length ? `Picked: ${value.join(', ')}` : 'Nothing picked: a role with no permissions can only use what every signed-in user may.'}
      </p>
      <ErrorNote error={error} />
      {missing.length > 0 && <p class="field-error">Not yours to grant: {missing.join(', ')}</p>}
    </fieldset>
  );
}
