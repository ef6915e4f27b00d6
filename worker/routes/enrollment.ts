// Placeholder: filled in by the enrollment work.
import type { App } from '../openapi.ts';

export function registerEnrollmentRoutes(_app: App) {}
