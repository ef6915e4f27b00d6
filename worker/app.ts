// Builds the Hono app: every native route, the compatibility layers and the error rendering.
// Entry points (index.ts, tests) only wire a runtime to what this returns.
import { HTTPException } from 'hono/http-exception';
import { ApiError } from './errors.ts';
import { errorBody } from '../shared/codes.ts';
import { newApp, type App } from './openapi.ts';
import { forgetPrincipalsOnWrite } from './auth/middleware.ts';
import { writeAudit } from './audit.ts';
import { RELAY_VERSION } from '../shared/version.ts';
import { registerHealthRoutes } from './routes/health.ts';
import { registerAuthRoutes } from './routes/auth.ts';
import { registerTwoFactorRoutes } from './routes/two-factor.ts';
import { registerApiKeyRoutes } from './routes/api-keys.ts';
import { registerUserRoutes } from './routes/users.ts';
import { registerRoleRoutes } from './routes/roles.ts';
import { registerEnrollmentRoutes } from './routes/enrollment.ts';
import { registerAgentInstallRoutes } from './routes/agent-install.ts';
import { registerDeviceRoutes } from './routes/devices.ts';
import { registerKvmRoutes } from './routes/kvm.ts';
import { registerTerminalRoutes } from './routes/terminal.ts';
import { registerProcessRoutes } from './routes/processes.ts';
import { registerLogRoutes } from './routes/logs.ts';
import { registerMetricsRoutes } from './routes/metrics.ts';
import { registerAlertRoutes } from './routes/alerts.ts';
import { registerAlertDeliveryRoutes } from './routes/alert-deliveries.ts';
import { registerAgentRoutes } from './routes/agents.ts';
import { registerAgentConnectRoute } from './routes/agent-connect.ts';
import { registerPiTunnelRoutes } from './compat/pitunnel.ts';
import { registerTunnelRoutes } from './routes/tunnels.ts';
import { registerTunnelControlRoutes } from './compat/tunnel-control.ts';
import { registerStreamRoutes } from './routes/stream.ts';
import { registerAuditRoutes } from './routes/audit.ts';
import { registerVariableRoutes } from './routes/variables.ts';
import { registerAdminRoutes } from './routes/admin.ts';
import { registerPipetowerRoutes } from './compat/pipetower.ts';
import { registerTeamRoutes } from './routes/teams.ts';
import { registerInvitationRoutes } from './routes/invitations.ts';
import { registerPermissionRoutes } from './routes/permissions.ts';
import { registerTinypilotKeyRoutes } from './routes/tinypilot-keys.ts';
import { registerTinypilotRoutes } from './compat/tinypilot.ts';
import { serveDashboard } from './dashboard.ts';

export interface AppDeps {
  /** When this relay instance started (ms), for /health's uptime. */
  startedAt: number;
}

export function createApp(deps: AppDeps): App {
  const app = newApp();

  app.onError((e, c) => {
    if (e instanceof ApiError) return c.json(errorBody(e.code, e.message, e.details), e.status);
    if (e instanceof HTTPException) {
      const status = e.status;
      const code = status === 401 ? 'UNAUTHORIZED' : status === 413 ? 'PAYLOAD_TOO_LARGE' : status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : 'BAD_REQUEST';
      return c.json(errorBody(code, e.message || 'Bad request'), status);
    }
    console.error('unhandled error', c.req.method, c.req.path, e);
    return c.json(errorBody('INTERNAL', 'Internal error'), 500);
  });
  app.notFound(serveDashboard);

  app.use('*', writeAudit);
  for (const prefix of ['/api/v1/auth/*', '/api/v1/api-keys/*', '/api/v1/users/*', '/api/v1/roles/*', '/api/v1/teams/*', '/api/v1/invitations/*', '/api/v1/api-keys', '/api/v1/users', '/api/v1/roles', '/api/v1/teams']) {
    app.use(prefix, forgetPrincipalsOnWrite);
  }
  registerHealthRoutes(app, deps);
  registerAuthRoutes(app);
  registerTwoFactorRoutes(app);
  registerApiKeyRoutes(app);
  registerUserRoutes(app);
  registerRoleRoutes(app);
  registerEnrollmentRoutes(app);
  registerAgentInstallRoutes(app);
  registerDeviceRoutes(app);
  registerKvmRoutes(app);
  registerTerminalRoutes(app);
  registerProcessRoutes(app);
  registerLogRoutes(app);
  registerMetricsRoutes(app);
  registerAlertRoutes(app);
  registerAlertDeliveryRoutes(app);
  registerAgentRoutes(app);
  registerAgentConnectRoute(app);
  registerPiTunnelRoutes(app);
  registerTunnelRoutes(app);
  registerTunnelControlRoutes(app);
  registerStreamRoutes(app);
  registerAuditRoutes(app);
  registerVariableRoutes(app);
  registerAdminRoutes(app);
  registerTeamRoutes(app);
  registerInvitationRoutes(app);
  registerPermissionRoutes(app);
  registerTinypilotKeyRoutes(app);
  registerTinypilotRoutes(app);
  // Last: its catch-all answers Pipetower's 404 under /api/ (not /api/v1/).
  registerPipetowerRoutes(app);

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', { type: 'http', scheme: 'bearer' });
  app.openAPIRegistry.registerComponent('securitySchemes', 'basicAuth', {
    type: 'http',
    scheme: 'basic',
    description: 'An API key as the user name and an empty password (curl -u KEY:)',
  });
  app.doc31('/api/v1/openapi.json', {
    openapi: '3.1.0',
    info: { title: 'pirelay', version: RELAY_VERSION, description: 'The native pirelay API' },
  });
  return app;
}
