// Changing a device: its name and tags (devices:write, any member of its team), approving a
// pending one, moving it to another team, revoking and removing it (devices:admin and the admin
// role in its team — and, for a move, in the target team too, so only those teams are offered).
// Each change shows the API's answer beside the control that made it.
import { useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import type { Device, DeviceTag } from '../../../../shared/api/devices.ts';
import { del, patch, post, put } from '../../api.ts';
import { administers, can } from '../../session.ts';
import { ConfirmButton } from '../../ui/dialog.tsx';
import { Button, ErrorNote, SelectField, TextField } from '../../ui/form.tsx';
import { useAction } from '../../ui/use-load.ts';
import { adminsTeam, devicePath, type DeviceTabProps } from './shared.ts';

function Rename({ device, onDeviceChange }: DeviceTabProps) {
  const [name, setName] = useState(device.name);
  const save = useAction(async () => onDeviceChange(await patch<Device>(devicePath(device.id), { name })));
  return (
    <section class="panel" aria-labelledby="settings-name">
      <h2 id="settings-name">Name</h2>
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void save.run();
        }}
      >
        <TextField label="Device name" value={name} onValue={setName} required maxLength={64} autoComplete="off" hint="How the device is shown here and in pirelay tcp <device>:<port>" error={save.error?.forField('name')} />
        <Button type="submit" class="primary" busy={save.busy} disabled={name.trim() === device.name}>
          Rename
        </Button>
      </form>
      <ErrorNote error={save.error} fields={['name']} />
    </section>
  );
}

function Tags({ device, onDeviceChange }: DeviceTabProps) {
  const [name, setName] = useState('');
  const [color, setColor] = useState('#0b57d0');
  const save = useAction(async (tags: DeviceTag[]) => {
    onDeviceChange(await put<Device>(devicePath(device.id, '/tags'), { tags }));
    return true;
  });
  const add = async () => {
    if (await save.run([...device.tags, { name: name.trim(), color }])) setName('');
  };
  return (
    <section class="panel" aria-labelledby="settings-tags">
      <h2 id="settings-tags">Tags</h2>
      {device.tags.length === 0 ? (
        <p class="muted">No tags yet. Tags label devices in the fleet (at most 20).</p>
      ) : (
        <ul class="tag-list">
          {device.tags.map((t) => (
            <li key={t.name}>
              <span class="tag">
                <span class="tag-swatch" style={{ background: t.color }} aria-hidden="true" />
                {t.name}
              </span>
              <button type="button" class="link" disabled={save.busy} onClick={() => void save.run(device.tags.filter((o) => o.name !== t.name))}>
                Remove<span class="visually-hidden"> tag {t.name}</span>
              </button>
            </li>
          ))}
        </ul>
      )}
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void add();
        }}
      >
        <TextField label="New tag" value={name} onValue={setName} required maxLength={32} autoComplete="off" />
        <div class="field colour">
          <label for="tag-color">Colour</label>
          <input id="tag-color" type="color" value={color} onInput={(e) => setColor((e.currentTarget as HTMLInputElement).value)} />
        </div>
        <Button type="submit" busy={save.busy}>
          Add tag
        </Button>
      </form>
      <ErrorNote error={save.error} />
    </section>
  );
}

function Approve({ device, onDeviceChange }: DeviceTabProps) {
  const approve = useAction(async () => onDeviceChange(await post<Device>(devicePath(device.id, '/approve'))));
  return (
    <section class="panel" aria-labelledby="settings-approve">
      <h2 id="settings-approve">Approval</h2>
      <p>This device is {device.status}. Approve it to let its agent connect.</p>
      <div class="actions">
        <Button class="primary" busy={approve.busy} onClick={() => void approve.run()}>
          Approve
        </Button>
        {device.status === 'pending' && (
          <ConfirmButton label="Reject" title={`Reject ${device.name}?`} confirmLabel="Reject" onConfirm={async () => onDeviceChange(await post<Device>(devicePath(device.id, '/reject')))}>
            <p>Its agent is refused until the device is approved.</p>
          </ConfirmButton>
        )}
      </div>
      <ErrorNote error={approve.error} />
    </section>
  );
}

function Move({ device, teams, onDeviceChange }: DeviceTabProps) {
  // Only teams where the user is an admin (an instance admin: every team) may take the device.
  const targets = (teams ?? []).filter((t) => t.id !== device.team_id && administers(t.role));
  const [to, setTo] = useState('');
  const chosen = to || targets[0]?.id || '';
  const move = useAction(async () => onDeviceChange(await post<Device>(devicePath(device.id, '/move'), { team_id: chosen })));
  const current = teams?.find((t) => t.id === device.team_id);
  return (
    <section class="panel" aria-labelledby="settings-team">
      <h2 id="settings-team">Team</h2>
      <p>
        In team <strong>{current?.name ?? device.team_id}</strong>. Moving it takes it, with its tunnels, out of sight of this team's members at once.
      </p>
      {targets.length === 0 ? (
        <p class="muted">
          There is no other team you administer. <a href="/teams">Make a team</a> to move the device there.
        </p>
      ) : (
        <form
          class="inline-form"
          onSubmit={(e) => {
            e.preventDefault();
            void move.run();
          }}
        >
          <SelectField label="Move to team" value={chosen} options={targets.map((t) => ({ value: t.id, label: t.name }))} onValue={setTo} />
          <Button type="submit" busy={move.busy} busyLabel="Moving…">
            Move
          </Button>
        </form>
      )}
      <ErrorNote error={move.error} />
    </section>
  );
}

function Remove({ device, onDeviceChange }: DeviceTabProps) {
  const { route } = useLocation();
  const revocable = device.status === 'approved' || device.status === 'pending';
  return (
    <section class="panel danger-zone" aria-labelledby="settings-remove">
      <h2 id="settings-remove">Revoke or remove</h2>
      {revocable ? (
        <p>Revoking closes the device's connection and refuses its key from now on; to come back it must enroll again. Its record and tunnels stay.</p>
      ) : (
        <p>This device is {device.status}. Removing it deletes its record and its tunnels; to come back it must enroll again.</p>
      )}
      <div class="actions">
        {revocable && (
          <ConfirmButton label="Revoke" title={`Revoke ${device.name}?`} confirmLabel="Revoke" onConfirm={async () => onDeviceChange(await post<Device>(devicePath(device.id, '/revoke')))}>
            <p>Its socket closes now and its key is refused from now on. This cannot be undone: the device must enroll again.</p>
          </ConfirmButton>
        )}
        <ConfirmButton
          label="Remove device"
          title={`Remove ${device.name}?`}
          confirmLabel="Remove"
          onConfirm={async () => {
            await del(devicePath(device.id));
            route('/');
          }}
        >
          <p>The device and its tunnels are deleted, and its socket closes. This cannot be undone.</p>
        </ConfirmButton>
      </div>
    </section>
  );
}

export default function Settings(props: DeviceTabProps) {
  const { device, teams } = props;
  const admin = can('devices:admin') && adminsTeam(teams, device.team_id);
  const write = can('devices:write');
  if (!write && !admin) return <p class="muted">You may not change this device: that needs devices:write (rename, tags) or devices:admin in its team.</p>;
  return (
    <>
      {write && <Rename {...props} />}
      {write && <Tags {...props} />}
      {admin && (device.status === 'pending' || device.status === 'rejected') && <Approve {...props} />}
      {admin && can('teams:read') && <Move {...props} />}
      {admin && <Remove {...props} />}
    </>
  );
}
