import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { tmpdir } from 'node:os';
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import { LocalArtifactStore } from '../../src/artifacts/local.ts';
import { ingestCsv, readStoredCsv, sniffDelimiter, tableToCsv } from '../../src/datasets/csv-ingest.ts';
import type { CsvIngestResult } from '../../src/datasets/csv-ingest.ts';
import { DatasetParseError, DatasetTooLargeError } from '../../src/datasets/errors.ts';
import { getColumn } from '../../src/datasets/table.ts';
import type { Column } from '../../src/datasets/table.ts';

const SHARED = path.resolve(import.meta.dirname, '../../../shared');
const DATASETS = path.join(SHARED, 'datasets');
const WINE_RAW = path.join(DATASETS, 'raw', 'winequality-red.semicolon.csv');

/** Yields `data` in chunks of `size` bytes, like a slow network upload. */
async function* chunked(data: Buffer | string, size: number): AsyncGenerator<Buffer> {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8');
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

function values(c: Column): unknown[] {
  return c.type === 'categorical' ? [...c.values] : Array.from(c.values);
}

async function parseError(p: Promise<unknown>): Promise<DatasetParseError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof DatasetParseError, `expected DatasetParseError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a DatasetParseError');
}

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

void describe('sniffDelimiter', () => {
  void test('picks comma, semicolon, tab and pipe', () => {
    assert.equal(sniffDelimiter('a,b,c\n1,2,3\n4,5,6\n'), ',');
    assert.equal(sniffDelimiter('a;b;c\n1;2;3\n4;5;6\n'), ';');
    assert.equal(sniffDelimiter('a\tb\tc\n1\t2\t3\n'), '\t');
    assert.equal(sniffDelimiter('a|b\n1|2\n'), '|');
  });

  void test('ignores delimiters inside quoted fields, even across lines', () => {
    assert.equal(sniffDelimiter('"a;x";"b;y",c\n"1;2";"3;4",5\n'), ',');
    assert.equal(sniffDelimiter('"a,b";"c,d"\n"1,5";2\n"x\ny,z";3\n'), ';');
  });

  void test('decimal commas do not fool it: the header has none', () => {
    assert.equal(sniffDelimiter('x;y;z\n1,5;2,25;3\n4,0;5;6,1\n'), ';');
  });

  void test('consistency across records wins over raw counts', () => {
    // Commas appear in free text only in some rows; tabs are the real structure.
    assert.equal(sniffDelimiter('name\tnote\nbob\thi, there, you\nal\tok\n'), '\t');
  });

  void test('falls back to comma for one column and empty input; strips a BOM', () => {
    assert.equal(sniffDelimiter('value\n1\n2\n'), ',');
    assert.equal(sniffDelimiter(''), ',');
    assert.equal(sniffDelimiter('\ufeffa;b\n1;2'), ';');
  });

  void test('a cut last line is ignored', () => {
    assert.equal(sniffDelimiter('a;b\n1;2\n3;4\n5,6,7,8,'), ';');
  });
});

void describe('ingestCsv', () => {
  const sample =
    '\ufeff"sepal, length";"name";"flag"\r\n' +
    '5.1;"setosa";yes\r\n' +
    'NA;"versi;color";No\r\n' +
    '4,9;;TRUE\r\n';

  void test('parses a BOM, quoted headers, CRLF, quoted delimiters and missing markers', async () => {
    const csv = 'id,"the ""x""",cat,b\r\n1,2.5,a,true\r\n2,,N/A,false\r\n3,-1e3,"b, c",\r\n4,?,None,null\r\n';
    const r = await ingestCsv(Buffer.from('\ufeff' + csv));
    assert.equal(r.delimiter, ',');
    assert.equal(r.rowCount, 4);
    assert.deepEqual(
      r.table.columns.map((c) => [c.name, c.type]),
      [
        ['id', 'numeric'],
        ['the "x"', 'numeric'],
        ['cat', 'categorical'],
        ['b', 'boolean'],
      ],
    );
    assert.deepEqual(values(getColumn(r.table, 'the "x"')), [2.5, NaN, -1000, NaN]);
    assert.deepEqual(values(getColumn(r.table, 'cat')), ['a', null, 'b, c', null]);
    assert.deepEqual(values(getColumn(r.table, 'b')), [1, 0, NaN, NaN]);
    const schemaB = r.schema.columns[3];
    assert.equal(schemaB?.stats.missing, 2);
  });

  void test('sniffs semicolons and keeps decimal-comma text categorical (no locale tricks)', async () => {
    const r = await ingestCsv(sample);
    assert.equal(r.delimiter, ';');
    const c = getColumn(r.table, 'sepal, length');
    assert.equal(c.type, 'categorical');
    assert.deepEqual(values(c), ['5.1', null, '4,9']);
    assert.deepEqual(values(getColumn(r.table, 'name')), ['setosa', 'versi;color', null]);
    assert.equal(getColumn(r.table, 'flag').type, 'boolean');
  });

  void test('7-byte chunks, a Readable and a whole buffer give the same result', async () => {
    const csv = Buffer.from(
      'a,b,c,d\n' +
        Array.from({ length: 300 }, (_, i) => `${i},"x""${i % 7}",${i % 2 === 0 ? 'yes' : 'no'},"multi\nline ${i}"`).join('\n') +
        '\n',
    );
    const whole = await ingestCsv(csv);
    const small = await ingestCsv(chunked(csv, 7));
    const stream = await ingestCsv(Readable.from(chunked(csv, 1000)));
    for (const r of [small, stream]) {
      assert.equal(r.sha256, whole.sha256);
      assert.equal(r.bytes, csv.length);
      assert.equal(r.rowCount, 300);
      assert.deepEqual(r.schema, whole.schema);
      assert.deepEqual(r.table.columns.map(values), whole.table.columns.map(values));
    }
    assert.equal(whole.sha256, sha256(csv));
    assert.deepEqual(values(getColumn(whole.table, 'b')).slice(0, 2), ['x"0', 'x"1']);
    assert.equal(getColumn(whole.table, 'd').values[299], 'multi\nline 299');
  });

  void test('an explicit delimiter overrides sniffing', async () => {
    const r = await ingestCsv('a,b|c\n1,2|3\n', { delimiter: '|' });
    assert.deepEqual(
      r.table.columns.map((c) => c.name),
      ['a,b', 'c'],
    );
  });

  void test('onChunk sees exactly the raw bytes, in order', async () => {
    const csv = Buffer.from('x,y\n1,2\n3,4\n');
    const seen: Buffer[] = [];
    await ingestCsv(chunked(csv, 3), {
      onChunk: async (c) => {
        seen.push(Buffer.from(c));
      },
    });
    assert.deepEqual(Buffer.concat(seen), csv);
  });

  void test('typing: 0/1 stays numeric, words are boolean, mixed is categorical with original text', async () => {
    const r = await ingestCsv('bin,yn,zip,mixed\n0,Yes,01234,1.50\n1,no,90210,2\n1,TRUE,,x\n');
    assert.equal(getColumn(r.table, 'bin').type, 'numeric');
    assert.equal(getColumn(r.table, 'yn').type, 'boolean');
    assert.deepEqual(values(getColumn(r.table, 'yn')), [1, 0, 1]);
    assert.equal(getColumn(r.table, 'zip').type, 'numeric');
    // The column turned categorical on the third row: earlier cells keep their exact text.
    assert.deepEqual(values(getColumn(r.table, 'mixed')), ['1.50', '2', 'x']);
  });

  void test('rejects hex, infinity and thousands separators as numbers', async () => {
    for (const bad of ['0x10', 'Infinity', '1_000', '1e', '.', '+']) {
      const r = await ingestCsv(`v\n1\n${bad}\n`);
      assert.equal(getColumn(r.table, 'v').type, 'categorical', bad);
    }
    const ok = await ingestCsv('v\n+1\n-.5\n3.\n2E-3\n');
    assert.deepEqual(values(getColumn(ok.table, 'v')), [1, -0.5, 3, 0.002]);
  });

  void test('blank lines are skipped and line numbers stay physical', async () => {
    const csv = 'a,b\n\n1,2\n"x\ny",3\n\n4,5,6\n';
    const err = await parseError(ingestCsv(csv));
    // Line 1 header, 2 blank, 3 row, 4-5 one quoted record, 6 blank, 7 the ragged row.
    assert.equal(err.line, 7);
    assert.match(err.message, /line 7 has 3 fields, header has 2/);
  });

  void test('a CRLF inside a quoted field counts as one line; errors inside a record are placed', async () => {
    const ragged = await parseError(ingestCsv('a,b\r\n"x\r\ny",1\r\n2,3,4\r\n'));
    assert.equal(ragged.line, 4);
    const span = await parseError(ingestCsv('a,b\n1,2\n"p\nq\nr",1,9\n'));
    assert.equal(span.line, 3);
    assert.match(span.message, /line 3 \(record spanning lines 3-5\) has 3 fields/);
    // The bad quote is on the second physical line of a record that starts on line 3.
    // (csv-parse counts a CRLF inside the failing record itself twice, hence LF in that record.)
    const inner = await parseError(ingestCsv('a,b\r\n"m\r\nn",1\r\n"ok\nfine","x"y\r\n'));
    assert.equal(inner.line, 5);
    assert.equal(inner.field, 'b');
  });

  void test('ragged row names the line, also when fed in small chunks', async () => {
    const rows = Array.from({ length: 20 }, (_, i) => `${i},${i},${i}`);
    rows[15] = '1,2,3,4,5';
    const csv = 'a,b,c\n' + rows.join('\n') + '\n';
    for (const source of [csv, chunked(csv, 7)]) {
      const err = await parseError(ingestCsv(source));
      assert.equal(err.line, 17);
      assert.equal(err.message, 'line 17 has 5 fields, header has 3');
    }
    const short = await parseError(ingestCsv('a,b,c\r\n1,2,3\r\n1,2\r\n'));
    assert.equal(short.line, 3);
  });

  void test('unclosed quote names the line where it opened', async () => {
    const err = await parseError(ingestCsv('a,b\n1,2\n3,"oops\n5,6\n7,8\n'));
    assert.equal(err.line, 3);
    assert.equal(err.field, 'b');
    assert.match(err.message, /line 3: a quoted field in field "b" is opened but never closed/);
  });

  void test('text after a closing quote, or a quote inside a bare field, names the line', async () => {
    const closing = await parseError(ingestCsv('a,b\n1,2\n3,4\n"x"y,5\n'));
    assert.equal(closing.line, 4);
    assert.equal(closing.field, 'a');
    const opening = await parseError(ingestCsv(chunked('a,b\n1,2\n3,ab"c\n', 5)));
    assert.equal(opening.line, 3);
    assert.equal(opening.field, 'b');
  });

  void test('empty and duplicate header names, empty file, header without rows', async () => {
    const empty = await parseError(ingestCsv('a,,c\n1,2,3\n'));
    assert.equal(empty.line, 1);
    assert.match(empty.message, /column 2 of the header has an empty name/);
    const dup = await parseError(ingestCsv('\n"a", b ,a\n1,2,3\n'));
    assert.equal(dup.line, 2);
    assert.equal(dup.field, 'a');
    assert.match(dup.message, /duplicate column name "a" \(columns 1 and 3\)/);
    const none = await parseError(ingestCsv(''));
    assert.match(none.message, /empty/);
    const headerOnly = await parseError(ingestCsv('a,b\n'));
    assert.equal(headerOnly.line, 2);
    assert.match(headerOnly.message, /no data rows/);
  });

  void test('size limit stops reading at once', async () => {
    let pulled = 0;
    async function* big(): AsyncGenerator<Buffer> {
      yield Buffer.from('a,b\n');
      for (let i = 0; i < 10_000; i++) {
        pulled++;
        yield Buffer.from('1234567,89\n');
      }
    }
    await assert.rejects(ingestCsv(big(), { maxBytes: 100 }), (err: unknown) => {
      assert.ok(err instanceof DatasetTooLargeError);
      assert.equal(err.status, 413);
      assert.equal(err.maxBytes, 100);
      assert.ok(err.bytesRead > 100 && err.bytesRead <= 111);
      return true;
    });
    assert.ok(pulled <= 9, `read ${pulled} chunks after the limit`);
    // Exactly at the limit is fine.
    const exact = Buffer.from('a\n1\n');
    assert.equal((await ingestCsv(exact, { maxBytes: exact.length })).rowCount, 1);
  });

  void test('a Readable source is destroyed when the limit is exceeded', async () => {
    const stream = Readable.from(chunked(Buffer.alloc(10_000, 'x,y\n'), 64));
    await assert.rejects(ingestCsv(stream, { maxBytes: 500 }), DatasetTooLargeError);
    assert.equal(stream.destroyed, true);
  });
});

void describe('ingest while storing (the dataset service pattern)', () => {
  void test('tee raw bytes to an artifact store through onChunk, then reload the stored version', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mp-datasets-'));
    try {
      const store = new LocalArtifactStore(dir);
      const csv = Buffer.from('a;b;c\n' + Array.from({ length: 5000 }, (_, i) => `${i};${i % 3 === 0 ? 'x' : 'y'};${i / 7}`).join('\n'));
      const body = new PassThrough();
      const stored = store.put('datasets/demo/v1/data.csv', body);
      const result = await ingestCsv(chunked(csv, 4096), {
        onChunk: async (chunk) => {
          if (!body.write(chunk)) await once(body, 'drain');
        },
      });
      body.end();
      const info = await stored;
      assert.equal(info.size, csv.length);
      assert.equal(result.sha256, sha256(csv));
      const again = await ingestCsv(await store.getStream('datasets/demo/v1/data.csv'), { delimiter: result.delimiter });
      assert.equal(again.sha256, result.sha256);
      assert.deepEqual(again.schema, result.schema);
      assert.deepEqual(again.table.columns.map(values), result.table.columns.map(values));
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

void describe('tableToCsv', () => {
  void test('quotes per RFC 4180 and round-trips through ingestCsv', async () => {
    const src = await ingestCsv('n,s,b\n1.5,"he said ""hi""",yes\n,"a,b",\n-2,"two\nlines",no\n3," pad ",true\n');
    const csv = tableToCsv(src.table);
    assert.equal(
      csv,
      'n,s,b\r\n1.5,"he said ""hi""",true\r\n,"a,b",\r\n-2,"two\nlines",false\r\n3,pad,true\r\n',
    );
    const back = await ingestCsv(csv);
    assert.deepEqual(back.schema, src.schema);
    assert.deepEqual(back.table.columns.map(values), src.table.columns.map(values));
    assert.equal(tableToCsv(src.table, { delimiter: ';' }).split('\r\n')[2], ';a,b;');
  });
});

void describe('shared datasets', { skip: !existsSync(DATASETS) }, () => {
  const expected: Record<string, [number, number]> = {
    'breast_cancer.csv': [569, 31],
    'iris.csv': [150, 5],
    'winequality-red.csv': [1599, 12],
    'california_housing.csv': [20640, 9],
    'california_housing_sklearn_layout.csv': [20640, 9],
    'raw/winequality-red.semicolon.csv': [1599, 12],
  };

  void test('every CSV parses with the expected shape and the sha256 of its bytes', async () => {
    const files = [
      ...readdirSync(DATASETS).filter((f) => f.endsWith('.csv')),
      ...readdirSync(path.join(DATASETS, 'raw')).map((f) => `raw/${f}`).filter((f) => f.endsWith('.csv')),
    ];
    assert.ok(files.length >= 6);
    for (const f of files) {
      const file = path.join(DATASETS, f);
      const r: CsvIngestResult = await ingestCsv(createReadStream(file, { highWaterMark: 16 * 1024 }));
      const shape = expected[f];
      if (shape) {
        assert.equal(r.rowCount, shape[0], f);
        assert.equal(r.table.columns.length, shape[1], f);
      }
      assert.equal(r.table.rowCount, r.rowCount);
      for (const c of r.table.columns) assert.equal(c.values.length, r.rowCount, `${f} ${c.name}`);
      const raw = readFileSync(file);
      assert.equal(r.sha256, sha256(raw), f);
      assert.equal(r.bytes, raw.length, f);
    }
  });

  void test('the original semicolon wine file: 1599 x 12 numeric, same values as the comma copy', { skip: !existsSync(WINE_RAW) }, async () => {
    const raw = await ingestCsv(createReadStream(WINE_RAW));
    assert.equal(raw.delimiter, ';');
    assert.equal(raw.rowCount, 1599);
    assert.equal(raw.table.columns.length, 12);
    assert.ok(raw.table.columns.every((c) => c.type === 'numeric'));
    assert.equal(raw.table.columns[0]?.name, 'fixed acidity');
    assert.equal(raw.table.columns[11]?.name, 'quality');
    const comma = await ingestCsv(createReadStream(path.join(DATASETS, 'winequality-red.csv')));
    assert.deepEqual(raw.table.columns.map(values), comma.table.columns.map(values));
    const quality = raw.schema.columns[11];
    assert.ok(quality?.type === 'numeric');
    assert.equal(quality.stats.min, 3);
    assert.equal(quality.stats.max, 8);
    assert.equal(quality.stats.integer, true);
  });
});

void describe('readStoredCsv', () => {
  const csv = 'n,code,b,free\n1,7,yes,x\nNA,8,no,2\n3,,,y\n';

  void test('builds declared columns as their types and infers the others, as ingestCsv would', async () => {
    const declared = { rows: 3, types: { n: 'numeric', code: 'categorical', b: 'boolean' } as const };
    const table = await readStoredCsv(chunked(csv, 5), ',', declared);
    const inferred = (await ingestCsv(csv)).table;
    assert.equal(table.rowCount, 3);
    assert.deepEqual(
      table.columns.map((c) => [c.name, c.type]),
      [
        ['n', 'numeric'],
        ['code', 'categorical'],
        ['b', 'boolean'],
        ['free', 'categorical'],
      ],
    );
    assert.deepEqual(values(getColumn(table, 'n')), values(getColumn(inferred, 'n')));
    assert.deepEqual(values(getColumn(table, 'b')), values(getColumn(inferred, 'b')));
    assert.deepEqual(values(getColumn(table, 'free')), values(getColumn(inferred, 'free')));
    // Declared categorical: numbers stay their text.
    assert.deepEqual(values(getColumn(table, 'code')), ['7', '8', null]);
  });

  void test('a cell that does not fit its declared type names the line and the column', async () => {
    const err = await parseError(readStoredCsv(csv, ',', { rows: 3, types: { free: 'numeric' } }));
    assert.equal(err.line, 2);
    assert.equal(err.field, 'free');
    assert.match(err.message, /line 2: column 'free' holds "x", which is not a number/);
  });

  void test('more or fewer rows than declared still read every row', async () => {
    for (const rows of [1, 10]) {
      const table = await readStoredCsv(csv, ',', { rows, types: { n: 'numeric' } });
      assert.deepEqual(values(getColumn(table, 'n')), [1, NaN, 3]);
    }
  });
});
