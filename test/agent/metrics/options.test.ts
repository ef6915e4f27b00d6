// The metrics flags: the Docker socket from --docker-socket, else a unix:// $DOCKER_HOST, else
// Docker's default; a relative path is a usage error; --root carries over.
import { describe, expect, it } from 'bun:test';
import { DEFAULT_DOCKER_SOCKET, metricsOptions } from '../../../agent/metrics/options.ts';
import { DEFAULT_REFRESH_SECONDS } from '../../../shared/api/series.ts';

describe('metrics options', () => {
  it('defaults', () => {
    expect(metricsOptions({}, {})).toEqual({ ok: true, options: { root: '/', dockerSocket: DEFAULT_DOCKER_SOCKET, intervalMs: DEFAULT_REFRESH_SECONDS * 1000 } });
  });

  it('--docker-socket, else a unix:// DOCKER_HOST; a tcp:// one is not a socket path', () => {
    expect(metricsOptions({ 'docker-socket': '/run/user/1000/docker.sock', root: '/snap' }, { DOCKER_HOST: 'unix:///other.sock' })).toMatchObject({ ok: true, options: { root: '/snap', dockerSocket: '/run/user/1000/docker.sock' } });
    expect(metricsOptions({}, { DOCKER_HOST: 'unix:///run/podman/podman.sock' })).toMatchObject({ ok: true, options: { dockerSocket: '/run/podman/podman.sock' } });
    expect(metricsOptions({}, { DOCKER_HOST: 'tcp://10.0.0.2:2375' })).toMatchObject({ ok: true, options: { dockerSocket: DEFAULT_DOCKER_SOCKET } });
  });

  it('a relative socket path is refused', () => {
    expect(metricsOptions({ 'docker-socket': 'docker.sock' }, {})).toEqual({ ok: false, message: '--docker-socket needs an absolute path, not "docker.sock"' });
  });
});
