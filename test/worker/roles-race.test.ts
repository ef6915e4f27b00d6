// A role deleted while a PUT of it is under way: the PUT found the role, then its UPDATE matched
// no row and the handler rendered a role that was not there (500). It must answer 404 like any
// PUT of a role that does not exist. Found by the e2e fuzz, which sends PUT and DELETE of the
// same spare role concurrently; here the DELETE starts first so that its query lands between
// the PUT's check and its UPDATE.
import { describe, expect, it } from 'vitest';
import { randomId } from '../../worker/auth/crypto.ts';
import { api, userWithKey } from './helpers.ts';

describe('PUT /api/v1/roles/{id} racing a DELETE of that role', () => {
  it('answers 200 or 404, never 500', async () => {
    const { key } = await userWithKey(['admin']);
    const statuses = new Set<number>();
    for (let k = 0; k < 20; k++) {
      const created = await api('/api/v1/roles', { key, json: { name: `race-${randomId(4)}`, permissions: ['devices:read'] } });
      expect(created.status).toBe(201);
      const { id } = (await created.json()) as { id: string };
      const [del, put] = await Promise.all([
        api(`/api/v1/roles/${id}`, { key, method: 'DELETE' }),
        api(`/api/v1/roles/${id}`, { key, method: 'PUT', json: { name: `renamed-${randomId(4)}` } }),
      ]);
      expect(del.status).toBe(204);
      statuses.add(put.status);
      if (put.status === 404) expect(await put.json()).toMatchObject({ code: 'NOT_FOUND' });
    }
    expect([...statuses].filter((s) => s !== 200 && s !== 404)).toEqual([]);
  });
});
