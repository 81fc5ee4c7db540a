import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A running s3rver: a real S3-protocol HTTP server on 127.0.0.1 with its own temp directory. */
export interface S3rverInstance {
  readonly endpoint: string;
  /** Dummy credentials s3rver accepts (it verifies SigV4 signatures against them). */
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
  stop(): Promise<void>;
}

const PROJECT_ROOT = path.resolve(import.meta.dirname, '../..');

/**
 * Starts s3rver in a child process (see s3rver-process.ts for why not in-process) on a free
 * port, with the given buckets created up front.
 */
export async function startS3rver(buckets: readonly string[]): Promise<S3rverInstance> {
  const directory = await mkdtemp(path.join(tmpdir(), 'modelplane-s3rver-'));
  const child = fork(path.join(import.meta.dirname, 's3rver-process.ts'), [directory, ...buckets], {
    cwd: PROJECT_ROOT,
    execArgv: ['--openssl-legacy-provider', '--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  let port: number;
  try {
    port = await waitForPort(child);
  } catch (err) {
    child.kill();
    await rm(directory, { recursive: true, force: true });
    throw err;
  }
  return {
    endpoint: `http://127.0.0.1:${port}`,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.send('stop');
        const timer = setTimeout(() => child.kill(), 5000);
        await exited;
        clearTimeout(timer);
      }
      await rm(directory, { recursive: true, force: true });
    },
  };
}

function waitForPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('s3rver did not start within 20 s')), 20_000);
    child.once('message', (message: { port?: unknown }) => {
      clearTimeout(timer);
      if (typeof message.port === 'number') resolve(message.port);
      else reject(new Error(`unexpected message from s3rver process: ${JSON.stringify(message)}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver process exited early with code ${code}`));
    });
  });
}
