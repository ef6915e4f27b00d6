// Variables at three levels, each with the same three routes (list, create-or-update by name,
// delete), and the merged view a device's runs get:
//
//   /api/v1/account/variables[/{name}]        the caller's own
//   /api/v1/teams/{id}/variables[/{name}]     a team's: members read, team admins write
//   /api/v1/devices/{id}/variables[/{name}]   a device's: members of its team read and write
//   /api/v1/devices/{id}/variables/effective  device over team over the caller's own
//
// Levels differ only in whose variables they are and who may touch them (declare and resolve
// below). Secret values go in and never come out: every answer shows "***", and nothing here
// opens a secret.
import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { App } from '../openapi.ts';
import type { AppEnv } from '../app-env.ts';
import { authErrors, conflictError, errorResponse, notFoundError } from '../openapi.ts';
import { allows, onDevice, onTeam, type Declared } from '../auth/access.ts';
import { principalOf } from '../auth/middleware.ts';
import { scopedTeam } from '../auth/scope.ts';
import { notFound } from '../errors.ts';
import { DeviceIdParam, json, security } from '../devices/api-schemas.ts';
import { audit } from '../audit.ts';
import * as S from '../../shared/api/variables.ts';
import { TeamIdSchema } from '../../shared/api/teams.ts';
import { deleteVariable, effectiveRows, listVariables, putVariable, type Owner } from '../variables/queries.ts';
import { presentVariable } from '../variables/present.ts';

const tags = ['variables'];
const read = allows('variables:read');
const write = allows('variables:write');

const Variable = S.VariableSchema.openapi('Variable');
const VariableList = S.VariableListSchema.openapi('VariableList');
const PutVariable = S.PutVariableSchema.openapi('PutVariable');
const name = S.VariableNameSchema.openapi({ param: { name: 'name', in: 'path' }, example: 'DATABASE_URL' });
const TeamIdParam = z.object({ id: TeamIdSchema.openapi({ param: { name: 'id', in: 'path' } }) });

interface Resolved {
  owner: Owner;
  /** The team the variables belong to, for the audit log (none for an account's). */
  teamId: string | null;
}

interface Level {
  level: Owner['level'];
  path: string;
  params: z.ZodObject<{ id: z.ZodString }> | null;
  what: string;
  /** Who may read (or write) this owner's variables: the route's declaration. */
  declare(access: 'read' | 'write'): Declared;
  /** Whose variables the route acts on, once its declaration let the caller through. */
  resolve(c: Context<AppEnv>): Resolved;
}

const LEVELS: Level[] = [
  {
    level: 'user',
    path: '/api/v1/account/variables',
    params: null,
    what: "your account's",
    declare: (access) => (access === 'read' ? read : write),
    resolve: (c) => ({ owner: { level: 'user', id: principalOf(c).userId }, teamId: null }),
  },
  {
    level: 'team',
    path: '/api/v1/teams/{id}/variables',
    params: TeamIdParam,
    what: "a team's (members read, team admins write)",
    declare: (access) => (access === 'read' ? onTeam(read) : onTeam(write, 'id', 'admin')),
    resolve: (c) => {
      const teamId = scopedTeam(c);
      return { owner: { level: 'team', id: teamId }, teamId };
    },
  },
  {
    level: 'device',
    path: '/api/v1/devices/{id}/variables',
    params: DeviceIdParam,
    what: "a device's (members of its team read and write)",
    declare: (access) => onDevice(access === 'read' ? read : write),
    resolve: (c) => ({ owner: { level: 'device', id: c.req.param('id')! }, teamId: scopedTeam(c) }),
  },
];

const withName = (params: Level['params']) => (params ? params.extend({ name }) : z.object({ name }));
const variableNotFound = (n: string) => notFound('Variable', { name: n });

function registerLevel(app: App, l: Level) {
  const missing = l.level === 'user' ? {} : notFoundError;

  app.openapi(
    createRoute({
      method: 'get',
      path: l.path,
      tags,
      summary: `List ${l.what} variables`,
      security,
      ...l.declare('read'),
      request: l.params ? { params: l.params } : {},
      responses: { 200: json(VariableList, 'The variables, by name; secret values as "***"'), ...authErrors, ...missing },
    }),
    async (c) => {
      const { owner } = l.resolve(c);
      return c.json({ variables: (await listVariables(c.env.DB, owner)).map(presentVariable) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'put',
      path: `${l.path}/{name}`,
      tags,
      summary: `Create or update one of ${l.what} variables`,
      description:
        'Leaving out `secret` keeps what the variable is (a new one is plain); leaving out `value` keeps its value, so `{"secret": true}` seals a plain variable. A secret is never read back: making it plain needs a new value.',
      security,
      ...l.declare('write'),
      request: { params: withName(l.params), body: { required: true, content: { 'application/json': { schema: PutVariable } } } },
      responses: {
        200: json(Variable, 'Updated'),
        201: json(Variable, 'Created'),
        ...authErrors,
        ...missing,
        ...conflictError,
        422: errorResponse('A value is needed: for a new variable, or to make a secret plain (VARIABLE_VALUE_REQUIRED)'),
        503: errorResponse('The relay has no VARIABLES_KEY to seal a secret with (SECRETS_UNAVAILABLE)'),
      },
    }),
    async (c) => {
      const { name: n } = c.req.valid('param');
      const { owner, teamId } = l.resolve(c);
      const { variable, created } = await putVariable(c.env, owner, n, c.req.valid('json'));
      audit(c, {
        action: created ? 'variable.create' : 'variable.update',
        targetType: 'variable',
        targetId: variable.id,
        teamId,
        details: { name: variable.name, level: variable.level, secret: variable.secret },
      });
      return created ? c.json(presentVariable(variable), 201) : c.json(presentVariable(variable), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: `${l.path}/{name}`,
      tags,
      summary: `Delete one of ${l.what} variables`,
      security,
      ...l.declare('write'),
      request: { params: withName(l.params) },
      responses: { 204: { description: 'Deleted' }, ...authErrors, ...notFoundError },
    }),
    async (c) => {
      const { name: n } = c.req.valid('param');
      const { owner, teamId } = l.resolve(c);
      const row = await deleteVariable(c.env.DB, owner, n);
      if (!row) throw variableNotFound(n);
      audit(c, { action: 'variable.delete', targetType: 'variable', targetId: row.id, teamId, details: { name: row.name, level: row.level, secret: row.secret } });
      return c.body(null, 204);
    },
  );
}

export function registerVariableRoutes(app: App) {
  // "effective" is not a variable name (those are upper case), so it cannot clash with …/variables/{name}.
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/devices/{id}/variables/effective',
      tags,
      summary: "The variables a device's runs get for you: the device's over its team's over your own",
      security,
      ...onDevice(read),
      request: { params: DeviceIdParam },
      responses: { 200: json(VariableList, 'The merged variables, by name, each with the level it comes from; secret values as "***"'), ...authErrors, ...notFoundError },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      return c.json({ variables: (await effectiveRows(c.env.DB, { userId: principalOf(c).userId, deviceId: id })).map(presentVariable) }, 200);
    },
  );
  for (const l of LEVELS) registerLevel(app, l);
}
