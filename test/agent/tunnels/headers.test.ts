// Header values on their way to the target: non-ASCII values go out as their UTF-8 bytes (fetch
// sends one byte per character and refuses characters above U+00FF), ASCII ones untouched.
import { describe, expect, it } from 'bun:test';
import { requestHeaders, wireValue } from '../../../agent/tunnels/headers.ts';

describe('wireValue', () => {
  it('leaves ASCII alone and turns anything else into its UTF-8 bytes', () => {
    expect(wireValue('plain; q=1, "x"\t\\')).toBe('plain; q=1, "x"\t\\');
    expect(wireValue('caf\u00e9')).toBe('caf\u00c3\u00a9');
    expect(wireValue('\u2713')).toBe('\u00e2\u009c\u0093');
    const long = '\u00e9'.repeat(20_000); // more bytes than one String.fromCharCode call should take
    expect(wireValue(long)).toBe('\u00c3\u00a9'.repeat(20_000));
  });

  it('gives fetch values it accepts, and the target the bytes the visitor sent', async () => {
    const server = Bun.serve({ port: 0, fetch: (r) => new Response(r.headers.get('x-v')) });
    try {
      const visitor = Buffer.from('caf\u00e9 \u2713', 'utf8');
      const decodedByRelay = visitor.toString('utf8');
      const headers = requestHeaders([['x-v', decodedByRelay]], { host: `127.0.0.1:${server.port}` });
      const res = await fetch(`http://127.0.0.1:${server.port}/`, { headers });
      // The server reads header bytes one per character: the visitor's UTF-8 bytes, unchanged.
      expect(await res.text()).toBe(visitor.toString('latin1'));
    } finally {
      server.stop(true);
    }
  });
});
