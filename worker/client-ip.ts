// The address a request came from. Who may say so is a deployment fact, so it is a var:
// TRUST_CF_CONNECTING_IP = "true" (wrangler.toml, for a relay behind Cloudflare's edge, which
// sets CF-Connecting-IP on every request and replaces any copy a client sent) trusts the header.
// Anything else ignores it, because a client can send one of its own: the local relay (workerd
// serving a socket straight) and `wrangler dev` (whose Miniflare entry worker keeps a client's
// copy and only fills in a missing one) both set it to "false". Then the address is what the local
// relay knows (LOCAL_CLIENT_IP: when it listens on loopback only, every client is this machine).
export function clientIpOf(req: Request, env: Partial<Pick<Env, 'LOCAL_CLIENT_IP' | 'TRUST_CF_CONNECTING_IP'>>): string {
  const edge = env.TRUST_CF_CONNECTING_IP === 'true' ? req.headers.get('cf-connecting-ip')?.trim() : undefined;
  return edge || env.LOCAL_CLIENT_IP || 'unknown';
}
