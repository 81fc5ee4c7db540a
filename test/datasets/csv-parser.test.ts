/**
 * Uploads parsed on the parser thread (csv-parser.ts): the same outcome and the same errors as
 * `ingestCsv` in the caller's thread, back-pressure on large inputs, and a thread that ends once
 * idle and starts again for the next upload.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { ingestCsv } from '../../src/datasets/csv-ingest.ts';
import { CsvParserThread, PARSER_IDLE_MS } from '../../src/datasets/csv-parser.ts';
import { DatasetParseError, DatasetTooLargeError } from '../../src/datasets/errors.ts';

async function* chunked(data: Buffer | string, size: number): AsyncGenerator<Buffer> {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8');
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

/** `rows` numeric rows and a categorical column, about 40 bytes a row. */
function bigCsv(rows: number, ragged?: number): string {
  const lines = ['id,x,y,label'];
  for (let i = 0; i < rows; i++) lines.push(i === ragged ? `${i},1` : `${i},${(i * 0.37).toFixed(3)},${Math.sin(i).toFixed(5)},c${i % 7}`);
  return `${lines.join('\n')}\n`;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  return assert.fail('expected a rejection');
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

void describe('CsvParserThread', { timeout: 180_000 }, () => {
  const parser = new CsvParserThread();
  after(() => parser.close());

  void test('gives ingestCsv’s schema, hash and counts; onChunk sees every byte in order', async () => {
    const csv = bigCsv(200_000);
    const seen: Buffer[] = [];
    const parsed = await parser.parse(chunked(csv, 65_536), { onChunk: (c) => void seen.push(Buffer.from(c)) });
    const local = await ingestCsv(csv);
    assert.deepEqual(parsed.schema, local.schema);
    assert.equal(parsed.sha256, createHash('sha256').update(csv).digest('hex'));
    assert.equal(parsed.sha256, local.sha256);
    assert.equal(parsed.rowCount, 200_000);
    assert.equal(parsed.columnCount, 4);
    assert.equal(parsed.bytes, Buffer.byteLength(csv));
    assert.equal(parsed.delimiter, ',');
    assert.deepEqual(Buffer.concat(seen), Buffer.from(csv));
  });

  void test('whole content, a given delimiter, several uploads at once', async () => {
    const [a, b, c] = await Promise.all([parser.parse('a;b\n1;2\n3;4\n'), parser.parse('p|q\nx|1\n', { delimiter: '|' }), parser.parse(Buffer.from(bigCsv(50_000)))]);
    assert.equal(a.delimiter, ';');
    assert.equal(a.rowCount, 2);
    assert.deepEqual(
      b.schema.columns.map((col) => col.type),
      ['categorical', 'numeric'],
    );
    assert.equal(c.rowCount, 50_000);
  });

  void test('a parse error names the line, and reading stops soon after it', async () => {
    const csv = bigCsv(400_000, 1000);
    let read = 0;
    const err = await rejection(
      parser.parse(chunked(csv, 16_384), {
        onChunk: (chunk) => {
          read += chunk.length;
        },
      }),
    );
    assert.ok(err instanceof DatasetParseError, String(err));
    assert.equal(err.line, 1002);
    assert.match(err.message, /^line 1002 has 2 fields, header has 4$/);
    assert.ok(read < Buffer.byteLength(csv) / 2, `read ${read} bytes of ${Buffer.byteLength(csv)}`);
    const local = await rejection(ingestCsv(csv));
    assert.ok(local instanceof DatasetParseError);
    assert.equal(local.message, err.message);
  });

  void test('errors of the header and quoting are the same as ingestCsv’s', async () => {
    for (const csv of ['a,,c\n1,2,3\n', '\n"a", b ,a\n1,2,3\n', 'a,b\n1,2\n3,"oops\n5,6\n', 'a,b\n', '']) {
      const local = await rejection(ingestCsv(csv));
      const threaded = await rejection(parser.parse(chunked(csv, 3)));
      assert.ok(threaded instanceof DatasetParseError, String(threaded));
      assert.ok(local instanceof DatasetParseError);
      assert.equal(threaded.message, local.message);
      assert.equal(threaded.line, local.line);
      assert.equal(threaded.field, local.field);
    }
  });

  void test('over the limit: DatasetTooLargeError as soon as it is passed; an earlier parse error comes first', async () => {
    const csv = bigCsv(20_000);
    let read = 0;
    const err = await rejection(parser.parse(chunked(csv, 1000), { maxBytes: 10_000, onChunk: (c) => void (read += c.length) }));
    assert.ok(err instanceof DatasetTooLargeError, String(err));
    assert.equal(err.maxBytes, 10_000);
    assert.ok(err.bytesRead > 10_000 && err.bytesRead <= 11_000);
    assert.ok(read <= 10_000);
    // Parsing starts once 64 KiB arrived (the delimiter is sniffed from them), as in ingestCsv.
    const early = bigCsv(20_000, 5);
    const local = await rejection(ingestCsv(chunked(early, 1000), { maxBytes: 10_000 }));
    const threaded = await rejection(parser.parse(chunked(early, 1000), { maxBytes: 10_000 }));
    assert.ok(local instanceof DatasetTooLargeError && threaded instanceof DatasetTooLargeError, String(threaded));
    assert.equal(threaded.message, local.message);
    // A parse error more than the thread's window before the limit is reported first.
    const ragged = bigCsv(800_000, 5);
    const first = await rejection(parser.parse(chunked(ragged, 65_536), { maxBytes: 16 * 1024 * 1024 }));
    assert.ok(first instanceof DatasetParseError, String(first));
    assert.equal(first.line, 7);
  });

  void test('a source that fails ends that upload only', async () => {
    async function* failing(): AsyncGenerator<Buffer> {
      yield Buffer.from('a,b\n1,2\n');
      throw new Error('connection reset');
    }
    const err = await rejection(parser.parse(failing()));
    assert.ok(err instanceof Error);
    assert.equal(err.message, 'connection reset');
    assert.equal((await parser.parse('a,b\n1,2\n')).rowCount, 1);
  });

  void test('the thread ends once idle and starts again for the next upload', async () => {
    await parser.parse('a\n1\n');
    assert.equal(parser.alive, true);
    await until(() => !parser.alive, `the parser thread to end after ${PARSER_IDLE_MS} ms idle`);
    assert.equal((await parser.parse('a\n1\n2\n')).rowCount, 2);
    assert.equal(parser.alive, true);
  });
});
