/**
 * The harness's S3-protocol server: s3rver on a fixed port over a directory that survives
 * restarts, so "S3 down" is this process stopped and "S3 back" the same data on the same port.
 * Run with --openssl-legacy-provider (s3rver signs list continuation tokens with DES; see
 * test/artifacts/s3rver-process.ts). argv: <directory> <port> <bucket>...
 */
import S3rver from 's3rver';

const [directory, portText, ...buckets] = process.argv.slice(2);
if (directory === undefined || portText === undefined || buckets.length === 0) {
  process.stderr.write('usage: s3-server.ts <directory> <port> <bucket>...\n');
  process.exit(2);
}

const server = new S3rver({
  address: '127.0.0.1',
  port: Number(portText),
  silent: true,
  directory,
  vhostBuckets: false,
  configureBuckets: buckets.map((name) => ({ name, configs: [] })),
});

const { port } = await server.run();
process.stdout.write(`s3rver listening on 127.0.0.1:${port}, data in ${directory}\n`);

const stop = (): void => {
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
