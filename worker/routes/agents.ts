// Placeholder: filled in by the agents work.
import type { App } from '../openapi.ts';

export function registerAgentRoutes(_app: App) {}
