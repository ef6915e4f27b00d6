// Placeholder: filled in by the devices work.
import type { App } from '../openapi.ts';

export function registerDeviceRoutes(_app: App) {}
