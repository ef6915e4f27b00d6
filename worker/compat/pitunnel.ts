// Placeholder: filled in by the PiTunnel compatibility work.
import type { App } from '../openapi.ts';

export function registerPiTunnelRoutes(_app: App) {}
