// Placeholder: filled in by the auth work.
import type { App } from '../openapi.ts';

export function registerAuthRoutes(_app: App) {}
