// Placeholder: filled in by the api-keys work.
import type { App } from '../openapi.ts';

export function registerApiKeyRoutes(_app: App) {}
