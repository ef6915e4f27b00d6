// Runs the project's shared protocol code under Deno: proof that the wire format uses only
// web-standard APIs and works unchanged outside workerd and Bun.
import { deepStrictEqual, strictEqual, throws, ok } from 'node:assert';
import { decodeFrame, encodeFrame, FrameError, FrameType, MAX_FRAME_PAYLOAD } from '../../shared/protocol/frames.ts';
import { AgentMessageSchema, HubMessageSchema, RpcMethods } from '../../shared/protocol/messages.ts';
import { parseMessage, HEARTBEAT_PING } from '../../shared/protocol/envelope.ts';
import { DeviceInfoSchema } from '../../shared/api/device-info.ts';

declare const Deno: { test(name: string, fn: () => void | Promise<void>): void; version: { deno: string } };

Deno.test('runs under Deno', () => {
  ok(typeof Deno.version.deno === 'string');
});

Deno.test('frames round-trip with big-endian stream ids', () => {
  const payload = new TextEncoder().encode('hello');
  const bytes = encodeFrame(FrameType.DATA, 0x01020304, payload);
  deepStrictEqual([...bytes.subarray(0, 5)], [FrameType.DATA, 1, 2, 3, 4]);
  const f = decodeFrame(bytes.buffer as ArrayBuffer);
  strictEqual(f.type, FrameType.DATA);
  strictEqual(f.streamId, 0x01020304);
  strictEqual(new TextDecoder().decode(f.payload), 'hello');
});

Deno.test('malformed frames are rejected with FrameError', () => {
  throws(() => decodeFrame(new Uint8Array([2, 0, 0])), FrameError);
  throws(() => decodeFrame(new Uint8Array([99, 0, 0, 0, 1])), FrameError);
  throws(() => encodeFrame(FrameType.DATA, -1), FrameError);
  throws(() => encodeFrame(FrameType.DATA, 1, new Uint8Array(MAX_FRAME_PAYLOAD + 1)), FrameError);
});

Deno.test('control messages parse and reject garbage', () => {
  const hello = parseMessage(AgentMessageSchema, JSON.stringify({ t: 'hello', protocol: 1, agent_version: '0.1.0', capabilities: [] }));
  strictEqual(hello?.t, 'hello');
  strictEqual(parseMessage(AgentMessageSchema, '{not json'), null);
  strictEqual(parseMessage(AgentMessageSchema, JSON.stringify({ t: 'hello', protocol: 'one' })), null);
  strictEqual(parseMessage(HubMessageSchema, JSON.stringify({ t: 'req', id: 1, method: 'device_info', params: {} }))?.t, 'req');
  strictEqual(parseMessage(AgentMessageSchema, HEARTBEAT_PING)?.t, 'ping');
});

Deno.test('RPC schemas validate device_info results', () => {
  ok(RpcMethods.device_info.params.safeParse({}).success);
  ok(!RpcMethods.device_info.params.safeParse({ extra: 1 }).success);
  ok(!DeviceInfoSchema.safeParse({ hostname: 'x' }).success);
});
