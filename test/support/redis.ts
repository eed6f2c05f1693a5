/**
 * A real redis-server for tests, on 127.0.0.1 with an ephemeral port, no persistence (`--save '' --appendonly
 * no`) and its working directory in a temp dir. `kill()` + `restart()` simulate an outage: the server comes
 * back on the same port, so clients holding the URL can reconnect.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { findBinary } from './binaries.ts';
import { freePort } from './ports.ts';

export interface TestRedis {
  /** `redis://127.0.0.1:PORT` */
  url: string;
  port: number;
  /** Graceful shutdown, then removes the temp dir. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL (an outage); `restart()` brings it back on the same port, empty. */
  kill(): Promise<void>;
  /** Starts the server again on the same port (killing the running one first, if any). */
  restart(): Promise<void>;
  /** SIGSTOP: the server keeps its connections but answers nothing (a hung Redis). */
  pause(): void;
  /** SIGCONT after `pause()`. */
  resume(): void;
}

const READY_TIMEOUT_MS = 10_000;
const START_ATTEMPTS = 5;

export async function startRedis(): Promise<TestRedis> {
  const binary = findBinary('redis-server');
  if (binary === undefined) throw new Error('redis-server not installed (use requireBinary in the test)');
  const dir = await mkdtemp(join(tmpdir(), 'sigpin-redis-'));
  let lastError: unknown;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    const port = await freePort();
    try {
      const child = await spawnRedis(binary, port, dir);
      return manage(binary, port, dir, child);
    } catch (err) {
      lastError = err; // most likely the port was taken between freePort() and bind: try another
    }
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`redis-server did not start: ${String(lastError)}`);
}

function manage(binary: string, port: number, dir: string, first: ChildProcess): TestRedis {
  let child: ChildProcess | undefined = first;
  let stopped = false;
  const killOnExit = () => child?.kill('SIGKILL');
  process.once('exit', killOnExit);

  async function terminate(signal: NodeJS.Signals): Promise<void> {
    const running = child;
    child = undefined;
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
    const exited = once(running, 'exit');
    running.kill('SIGCONT'); // a paused server would not act on SIGTERM
    running.kill(signal);
    await exited;
  }

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      if (stopped) return;
      stopped = true;
      await terminate('SIGTERM');
      process.removeListener('exit', killOnExit);
      await rm(dir, { recursive: true, force: true });
    },
    async kill() {
      await terminate('SIGKILL');
    },
    pause() {
      child?.kill('SIGSTOP');
    },
    resume() {
      child?.kill('SIGCONT');
    },
    async restart() {
      if (stopped) throw new Error('redis was stopped');
      await terminate('SIGKILL');
      let lastError: unknown;
      // The port was just released; binding can race with the old socket's teardown, so retry briefly.
      for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
        try {
          child = await spawnRedis(binary, port, dir);
          return;
        } catch (err) {
          lastError = err;
          await sleep(100);
        }
      }
      throw new Error(`redis-server did not restart on port ${port}: ${String(lastError)}`);
    },
  };
}

/** Spawns redis-server and resolves once it accepts connections; rejects if it exits first or takes too long. */
function spawnRedis(binary: string, port: number, dir: string): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  args.push('--dir', dir, '--daemonize', 'no', '--logfile', '', '--protected-mode', 'yes');
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => fail(new Error(`not ready after ${READY_TIMEOUT_MS} ms`)),
      READY_TIMEOUT_MS
    );
    const onData = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4096);
      if (output.includes('Ready to accept connections')) {
        cleanup();
        // Keep draining the pipes so a chatty server never blocks on a full pipe.
        child.stdout?.resume();
        child.stderr?.resume();
        resolve(child);
      }
    };
    const onExit = (code: number | null) => fail(new Error(`exited with ${code}: ${output.trim()}`));
    function cleanup() {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
    }
    function fail(err: Error) {
      cleanup();
      child.kill('SIGKILL');
      reject(err);
    }
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', (err) => fail(err));
  });
}
