/**
 * Child process that runs a real s3rver for the S3 contract tests.
 *
 * Why a separate process: s3rver signs ListObjectsV2 continuation tokens with DES, which the
 * OpenSSL 3 bundled with Node >= 17 only provides through its legacy provider. The parent starts
 * this file with `--openssl-legacy-provider`, so pagination works without changing how the
 * test runner itself is started.
 *
 * argv: <data directory> <bucket>... Sends `{ port }` over IPC once listening; exits when the
 * parent disconnects or sends 'stop'.
 */
import S3rver from 's3rver';

const [directory, ...buckets] = process.argv.slice(2);
if (!directory || buckets.length === 0 || !process.send) {
  console.error('usage: fork s3rver-process.ts <directory> <bucket>... (with an IPC channel)');
  process.exit(2);
}

const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory,
  vhostBuckets: false,
  configureBuckets: buckets.map((name) => ({ name, configs: [] })),
});

const { port } = await server.run();
process.send({ port });

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await server.close().catch(() => undefined);
  process.exit(0);
}
process.on('message', (message) => {
  if (message === 'stop') void stop();
});
process.on('disconnect', () => void stop());
