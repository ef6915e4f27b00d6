// A V8 CPU profile of the relay (workerd, through its inspector) while `during` runs: prints the
// functions with the most self time (PIRELAY_PROFILE_OUT keeps the whole profile).
import { writeFileSync } from 'node:fs';
import { WebSocket } from 'undici';

export async function profileWorkerd<T>(inspectorPort: number, during: () => Promise<T>, top = 40): Promise<T> {
  const list = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json()) as { webSocketDebuggerUrl: string; title: string }[];
  console.log('targets:', list.map((t) => t.title).join(', '));
  const target = list.find((t) => t.title.includes('pirelay')) ?? list[0]!;
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((r) => (ws.onopen = r));
  let id = 0;
  const pending = new Map<number, (v: any) => void>();
  ws.onmessage = (ev) => {
    const m = JSON.parse(String(ev.data));
    if (m.id && pending.has(m.id)) pending.get(m.id)!(m.result);
  };
  const send = (method: string, params = {}) =>
    new Promise<any>((resolve) => {
      const i = ++id;
      pending.set(i, resolve);
      ws.send(JSON.stringify({ id: i, method, params }));
    });
  await send('Profiler.enable');
  await send('Profiler.setSamplingInterval', { interval: 100 });
  await send('Profiler.start');
  const result = await during();
  const { profile } = await send('Profiler.stop');
  // PIRELAY_PROFILE_OUT=file.cpuprofile keeps the whole profile (Chrome DevTools opens it).
  if (process.env.PIRELAY_PROFILE_OUT) writeFileSync(process.env.PIRELAY_PROFILE_OUT, JSON.stringify(profile));
  type Node = { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount: number };
  const nodes = profile.nodes as Node[];
  const total = nodes.reduce((a, n) => a + n.hitCount, 0);
  const self = new Map<string, number>();
  for (const n of nodes) {
    const key = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber}`;
    self.set(key, (self.get(key) ?? 0) + n.hitCount);
  }
  for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}`);
  ws.close();
  return result;
}
