// Placeholder: filled in by the roles work.
import type { App } from '../openapi.ts';

export function registerRoleRoutes(_app: App) {}
