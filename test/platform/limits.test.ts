/**
 * Request limits over real sockets (#12): a declared Content-Length over the route's limit is
 * refused before the body is read, a streamed body is no longer read once it passes the limit,
 * a client that stalls mid-body gets an API.md-shaped 408, and rejected uploads leave nothing.
 * No timing assertions: each check is that an answer arrives while the client is still holding
 * back (or still sending) its body.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../helper.ts';

const LIMIT = 64 * 1024;

interface RawAnswer {
  readonly status: number;
  readonly headers: string;
  readonly body: string;
  /** Body bytes the client had written when the answer came. */
  readonly sent: number;
}

/**
 * Sends `head` and then body bytes: `bodyBytes` in chunks while the server has not answered
 * (or only `stallAfter` bytes, then nothing). Resolves with the answer, whichever comes first.
 */
function rawRequest(port: number, head: string, options: { bodyBytes?: number; stallAfter?: number; chunk?: Buffer }): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    let sent = 0;
    let answered = false;
    socket.on('data', (d) => {
      answer += d.toString('latin1');
      answered = true;
    });
    const finish = (): void => {
      const [headers = '', body = ''] = answer.split('\r\n\r\n', 2);
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(headers)?.[1] ?? 0);
      resolve({ status, headers, body, sent });
    };
    socket.on('close', finish);
    // The server may close while the client still writes (EPIPE, ECONNRESET): the answer, if
    // any, is what arrived before 'close'.
    socket.on('error', () => undefined);
    socket.write(head);
    const chunk = options.chunk ?? Buffer.alloc(16 * 1024, 'a');
    if (options.stallAfter !== undefined) {
      socket.write(chunk.subarray(0, options.stallAfter));
      sent = options.stallAfter;
      return;
    }
    const pump = (): void => {
      while (!answered && sent < (options.bodyBytes ?? 0)) {
        sent += chunk.length;
        if (!socket.write(chunk)) {
          socket.once('drain', pump);
          return;
        }
      }
      if (answered) socket.end();
    };
    socket.on('data', () => socket.end());
    pump();
  });
}

describe('request limits over a socket', { timeout: 300_000 }, () => {
  let t: TestApp;
  let port: number;
  before(async () => {
    t = await buildTestApp({ env: { DATASET_MAX_BYTES: String(LIMIT), BODY_LIMIT_BYTES: String(LIMIT), REQUEST_TIMEOUT: '1', RATE_LIMIT_PER_MINUTE: '0' } });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    port = (t.app.server.address() as net.AddressInfo).port;
  });
  after(async () => {
    await t?.close();
  });

  const head = (method: string, url: string, headers: Record<string, string | number>, key = t.keys.admin): string =>
    `${method} ${url} HTTP/1.1\r\nhost: x\r\nx-api-key: ${key}\r\n${Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('')}\r\n`;

  it('refuses a declared Content-Length over the limit before reading the body', async () => {
    for (const [url, type] of [
      ['/datasets/big', 'text/csv'],
      ['/datasets/big', 'multipart/form-data; boundary=XyZ'],
      ['/models/big/versions', 'application/octet-stream'],
      ['/models/big/versions', 'multipart/form-data; boundary=XyZ'],
      ['/experiments', 'application/json'],
    ] as const) {
      // The client sends the headers and nothing else: only a refusal on the header answers.
      const res = await rawRequest(port, head('POST', url, { 'content-type': type, 'content-length': 200 * 1024 * 1024 }), { stallAfter: 0 });
      assert.equal(res.status, 413, `${url} ${type}: ${res.headers}`);
      assert.match(res.body, /"error":"payload_too_large"/);
      assert.match(res.body, /limit/);
    }
  });

  it('stops reading a chunked body as soon as it passes the limit', async () => {
    // A server of its own with a long REQUEST_TIMEOUT: this is about the size limit, and on a busy
    // machine offering the body (from this same process) can take longer than the 1 s above.
    const patient = await buildTestApp({ env: { DATASET_MAX_BYTES: String(LIMIT), BODY_LIMIT_BYTES: String(LIMIT), REQUEST_TIMEOUT: '120', RATE_LIMIT_PER_MINUTE: '0' } });
    await patient.app.listen({ port: 0, host: '127.0.0.1' });
    const patientPort = (patient.app.server.address() as net.AddressInfo).port;
    try {
      const boundary = 'XyZ';
      const multipartHead = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\nContent-Type: text/csv\r\n\r\na,b\n`);
      for (const [url, type] of [
        ['/datasets/big', 'text/csv'],
        ['/datasets/big', `multipart/form-data; boundary=${boundary}`],
        ['/models/big/versions', `multipart/form-data; boundary=${boundary}`],
      ] as const) {
        // Chunked encoding: one chunk per write. Up to 4000 times the limit is offered.
        const data = Buffer.concat([multipartHead, Buffer.from('1,2\n'.repeat(4096))]);
        const chunk = Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]);
        const res = await rawRequest(patientPort, head('POST', url, { 'content-type': type, 'transfer-encoding': 'chunked' }, patient.keys.admin), { bodyBytes: LIMIT * 4000, chunk });
        assert.equal(res.status, 413, `${url} ${type}: ${res.headers}\n${res.body}`);
        assert.ok(res.sent < LIMIT * 4000, `answered after ${res.sent} bytes`);
      }
    } finally {
      await patient.close();
    }
  });

  it('answers a client that stalls mid-body with a 408 in the API.md shape', async () => {
    for (const [url, type] of [
      ['/experiments', 'application/json'],
      ['/datasets/slow', 'text/csv'],
      ['/models/slow/versions', 'multipart/form-data; boundary=XyZ'],
    ] as const) {
      const res = await rawRequest(port, head('POST', url, { 'content-type': type, 'content-length': 1000 }), { stallAfter: 10 });
      assert.equal(res.status, 408, `${url}: ${res.headers}`);
      const body = JSON.parse(res.body) as { error: string; details: string; request_id: string };
      assert.equal(body.error, 'request_timeout');
      assert.match(body.details, /1 s/);
    }
  });

  it('answers a client that stalls inside its headers', async () => {
    const res = await rawRequest(port, 'POST /experiments HTTP/1.1\r\nhost: x\r\n', { stallAfter: 0 });
    assert.equal(res.status, 408, res.headers);
  });

  it('leaves no directory behind for a rejected dataset upload', async () => {
    const bad = await t.app.inject({ method: 'POST', url: '/datasets/leftover', headers: { ...t.headers('admin'), 'content-type': 'text/csv' }, payload: 'a,b\n1\n"unterminated' });
    assert.equal(bad.statusCode, 400, bad.body);
    const big = await t.app.inject({ method: 'POST', url: '/datasets/leftover2', headers: { ...t.headers('admin'), 'content-type': 'text/csv' }, payload: 'a,b\n' + '1,2\n'.repeat(LIMIT) });
    assert.equal(big.statusCode, 413, big.body);
    const root = path.join(t.dataDir, 'artifacts', 'datasets');
    const left = existsSync(root) ? readdirSync(root).filter((d) => d.startsWith('leftover') || d === 'big') : [];
    assert.deepEqual(left, []);
  });
});
