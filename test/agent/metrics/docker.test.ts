// Containers through a fake Docker Engine API served on a unix socket by the test (Bun.serve), with
// each running container's cgroup files (v2 under system.slice, v1 under cpuacct/memory) in a temp
// root: the list, CPU % from the cgroup's CPU time over the clock between two refreshes, memory
// less inactive file cache, the watched containers' status, the API asked once per refresh period,
// and a socket that is absent or answers garbage, an error or an Id that tries to leave the cgroup
// tree: `available: false` or a listed container with no usage, never a failed sample.
import { afterAll, afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DOCKER_EVERY_MS, DockerReader } from '../../../agent/metrics/docker.ts';
import { MetricsSampler } from '../../../agent/metrics/sampler.ts';
import { MetricsSampleSchema } from '../../../shared/api/metrics.ts';
import { fixedStatfs, makeRoot, manualClock, removeTempRoots, writeFiles } from '../system/helpers.ts';

afterEach(removeTempRoots);

const WEB = 'a1b2c3d4e5f6'.repeat(5) + 'abcd';
const DB = 'f'.repeat(64);
const OLD = '0'.repeat(64);

const sockDir = mkdtempSync(join(tmpdir(), 'pirelay-docker-'));
afterAll(() => rmSync(sockDir, { recursive: true, force: true }));

let answer: () => Response = () => Response.json([]);
const requests: string[] = [];
const socket = join(sockDir, 'docker.sock');
const server = Bun.serve({
  unix: socket,
  fetch(req) {
    requests.push(new URL(req.url).pathname + new URL(req.url).search);
    return answer();
  },
});
afterAll(() => server.stop(true));

const LIST = [
  { Id: WEB, Names: ['/web'], State: 'running', Status: 'Up 2 hours', Image: 'nginx' },
  { Id: DB, Names: ['/db'], State: 'running', Status: 'Up 2 hours' },
  { Id: OLD, Names: ['/old-job'], State: 'exited', Status: 'Exited (0) 3 days ago' },
];

function cgroups(webUsec: number, dbNs: number) {
  return {
    [`sys/fs/cgroup/system.slice/docker-${WEB}.scope/cpu.stat`]: `usage_usec ${webUsec}\nuser_usec 1\nsystem_usec 1\n`,
    [`sys/fs/cgroup/system.slice/docker-${WEB}.scope/memory.current`]: '52428800\n',
    [`sys/fs/cgroup/system.slice/docker-${WEB}.scope/memory.stat`]: 'anon 1\nfile 2\ninactive_file 10485760\nactive_file 3\n',
    [`sys/fs/cgroup/cpuacct/docker/${DB}/cpuacct.usage`]: `${dbNs}\n`,
    [`sys/fs/cgroup/memory/docker/${DB}/memory.usage_in_bytes`]: '209715200\n',
    [`sys/fs/cgroup/memory/docker/${DB}/memory.stat`]: 'cache 1\ntotal_inactive_file 9715200\n',
  };
}

describe('docker', () => {
  test('lists containers, with CPU and memory of the running ones from their cgroups', async () => {
    answer = () => Response.json(LIST);
    const root = makeRoot(cgroups(1_000_000, 5_000_000_000));
    const clock = manualClock();
    const docker = new DockerReader({ root, socket, now: clock.now });
    const first = await docker.read();
    expect(requests.at(-1)).toBe('/containers/json?all=1');
    expect(first).toEqual({
      available: true,
      containers: [
        { id: WEB, name: 'web', status: 'running', cpu: 0, memory: 52428800 - 10485760 },
        { id: DB, name: 'db', status: 'running', cpu: 0, memory: 209715200 - 9715200 },
        { id: OLD, name: 'old-job', status: 'exited', cpu: 0, memory: 0 },
      ],
    });
    // 10 s later: web used 2.5 s of CPU (25 %), db 15 s (150 %: one and a half cores).
    writeFiles(root, cgroups(1_000_000 + 2_500_000, 5_000_000_000 + 15_000_000_000));
    clock.advance(10_000);
    const second = await docker.read();
    expect(second.containers.map((c) => [c.name, c.cpu])).toEqual([
      ['web', 25],
      ['db', 150],
      ['old-job', 0],
    ]);
  });

  test('no socket: not available', async () => {
    const docker = new DockerReader({ root: makeRoot({}), socket: join(sockDir, 'absent.sock'), now: () => 0 });
    expect(await docker.read()).toEqual({ available: false, containers: [] });
  });

  test('a socket that answers garbage, an error or the wrong shape: not available', async () => {
    const docker = new DockerReader({ root: makeRoot({}), socket, now: () => 0 });
    for (const bad of [
      () => new Response('not json at all {'),
      () => new Response('{"message":"page not found"}', { status: 404 }),
      () => Response.json({ containers: [] }),
      () => Response.json([{ Names: ['/no-id'] }]),
      () => Response.json([{ Id: 42 }]),
      () => Response.json(LIST, { status: 500 }),
    ]) {
      answer = bad;
      expect(await docker.read()).toEqual({ available: false, containers: [] });
    }
  });

  test('an answer that never ends is cut off past its bound, not read into memory whole', async () => {
    let sent = 0;
    answer = () =>
      new Response(
        new ReadableStream({
          pull(controller) {
            // '[' then a stream of spaces: valid JSON so far, and no end.
            controller.enqueue(new TextEncoder().encode(sent === 0 ? '[' + ' '.repeat(65535) : ' '.repeat(65536)));
            sent += 65536;
            if (sent > 64 * 1024 * 1024) controller.close();
          },
        }),
      );
    const result = await new DockerReader({ root: makeRoot({}), socket, now: () => 0 }).read();
    expect(result).toEqual({ available: false, containers: [] });
    expect(sent).toBeLessThan(32 * 1024 * 1024);
  });

  test('an Id that is not a container id is listed but never used as a path; long fields are cut', async () => {
    const root = makeRoot({ 'sys/fs/cgroup/docker/../../../secret/cpu.stat': 'usage_usec 1\n' });
    answer = () => Response.json([{ Id: '../../../secret', Names: ['/' + 'n'.repeat(1000)], State: 's'.repeat(500) }]);
    const result = await new DockerReader({ root, socket, now: () => 0 }).read();
    expect(result.containers).toEqual([{ id: '../../../secret', name: 'n'.repeat(256), status: 's'.repeat(64), cpu: 0, memory: 0 }]);
  });

  test('in a sample: watched containers with their status, and the API asked once per refresh period', async () => {
    answer = () => Response.json(LIST);
    const clock = manualClock();
    const sampler = new MetricsSampler({ root: makeRoot(cgroups(1, 1)), dockerSocket: socket, now: clock.now, systemctl: null, nvidiaSmi: null, statfs: fixedStatfs({}) });
    try {
      sampler.setWatch({ processes: [], containers: ['web', 'old-job', 'gone'] });
      const before = requests.length;
      const sample = await sampler.sample(1000);
      expect(MetricsSampleSchema.parse(sample)).toEqual(sample);
      expect(sample.docker.containers.map((c) => c.name)).toEqual(['web', 'db', 'old-job']);
      expect(sample.watched).toEqual({ processes: {}, containers: { web: 'running', 'old-job': 'exited' } });
      for (let t = 1000; t < DOCKER_EVERY_MS; t += 1000) {
        clock.advance(1000);
        await sampler.sample(1000);
      }
      expect(requests.length - before).toBe(1);
    } finally {
      sampler.close();
    }
  });
});
