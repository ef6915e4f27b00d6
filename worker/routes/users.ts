// Placeholder: filled in by the users work.
import type { App } from '../openapi.ts';

export function registerUserRoutes(_app: App) {}
