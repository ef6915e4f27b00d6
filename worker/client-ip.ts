// The address a request came from. On Cloudflare the edge sets CF-Connecting-IP on every request
// (replacing any a client sent). workerd serving a socket straight, as the local relay does,
// reports no address at all, so the local relay says what it knows (LOCAL_CLIENT_IP): when it
// listens on loopback only, every client is this machine.
export function clientIpOf(req: Request, env: Pick<Env, 'LOCAL_CLIENT_IP'>): string {
  return req.headers.get('cf-connecting-ip')?.trim() || env.LOCAL_CLIENT_IP || 'unknown';
}
