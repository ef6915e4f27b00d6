// Maps uids to user names for process_list the way `ps` does, from <root>/etc/passwd. The file is
// read at most once a minute: process_list can name hundreds of processes per call. A uid that is
// not in passwd (LDAP users, containers) is reported as the number, as psutil and ps do.
import { readText } from './proc.ts';

export function parsePasswd(text: string): Map<number, string> {
  const users = new Map<number, string>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const [name, , uid] = line.split(':');
    const id = Number(uid);
    if (name && uid !== undefined && uid !== '' && Number.isSafeInteger(id) && !users.has(id)) {
      users.set(id, name);
    }
  }
  return users;
}

export class UserNames {
  private users: Map<number, string> | null = null;
  private loadedAt = Number.NEGATIVE_INFINITY;
  private loading: Promise<Map<number, string>> | null = null;

  constructor(
    private readonly root: string,
    private readonly now: () => number = () => performance.now(),
    private readonly maxAgeMs = 60_000,
  ) {}

  /** A lookup function for one process_list call; reloads passwd first if it is stale. */
  async lookup(): Promise<(uid: number | null) => string> {
    const users = await this.load();
    return (uid) => (uid === null ? '' : (users.get(uid) ?? String(uid)));
  }

  private load(): Promise<Map<number, string>> {
    if (this.users && this.now() - this.loadedAt < this.maxAgeMs) return Promise.resolve(this.users);
    this.loading ??= readText(this.root, '/etc/passwd')
      .then((text) => {
        this.users = parsePasswd(text ?? '');
        this.loadedAt = this.now();
        return this.users;
      })
      .finally(() => {
        this.loading = null;
      });
    return this.loading;
  }
}
