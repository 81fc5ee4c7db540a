import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { DatasetParseError } from '../../src/datasets/errors.ts';
import {
  cellText,
  ColumnBuilder,
  columnNames,
  findColumn,
  getColumn,
  isMissingAt,
  isMissingMarker,
  tableFromJsonRows,
} from '../../src/datasets/table.ts';

void describe('missing markers', () => {
  void test('recognises the usual markers in any case, nothing else', () => {
    for (const m of ['', 'NA', 'na', 'N/A', 'n/a', 'NaN', 'nan', 'null', 'NULL', 'None', 'none', '?']) {
      assert.equal(isMissingMarker(m), true, m);
    }
    for (const v of ['0', 'N', 'NAN!', 'nil', '-', 'none1', '??']) assert.equal(isMissingMarker(v), false, v);
  });
});

void describe('ColumnBuilder', () => {
  void test('keeps the exact text of numeric cells when the column turns categorical late', () => {
    const b = new ColumnBuilder('c');
    const cells = ['007', ' 1.50 ', '', '2e3', 'yes', 'NA', 'z'];
    for (const c of cells) b.pushText(c);
    const col = b.finish();
    assert.equal(col.type, 'categorical');
    assert.deepEqual(col.values, ['007', '1.50', null, '2e3', 'yes', null, 'z']);
  });

  void test('an all-missing column is numeric NaN; booleans become 1/0', () => {
    const empty = new ColumnBuilder('e');
    empty.pushMissing();
    empty.pushText('NA');
    assert.deepEqual(empty.finish(), { name: 'e', type: 'numeric', values: new Float64Array([NaN, NaN]) });
    const bool = new ColumnBuilder('b');
    for (const c of ['', 'True', 'NO', 'yes']) bool.pushText(c);
    const col = bool.finish();
    assert.equal(col.type, 'boolean');
    assert.deepEqual(Array.from(col.values), [NaN, 1, 0, 1]);
  });

  void test('grows past its initial capacity', () => {
    const b = new ColumnBuilder('n');
    for (let i = 0; i < 5000; i++) b.pushText(String(i * 0.5));
    b.pushText('other');
    const col = b.finish();
    assert.equal(col.type, 'categorical');
    assert.equal(col.values.length, 5001);
    assert.equal(col.values[4999], '2499.5');
    assert.equal(col.values[5000], 'other');
  });

  void test('a text log of several pieces (more than a megabyte) turns categorical with every cell exact', () => {
    const b = new ColumnBuilder('n');
    const n = 300_000;
    for (let i = 0; i < n; i++) b.pushText(i % 1000 === 0 ? '' : (i / 7).toFixed(3));
    b.pushText('other');
    const col = b.finish();
    assert.equal(col.type, 'categorical');
    assert.equal(col.values.length, n + 1);
    for (let i = 0; i < n; i++) assert.equal(col.values[i], i % 1000 === 0 ? null : (i / 7).toFixed(3), `cell ${i}`);
    assert.equal(col.values[n], 'other');
  });

  void test('a long number cell larger than a piece is logged whole', () => {
    const b = new ColumnBuilder('n');
    // A finite number written with 9,002 characters: logged as one cell in a piece of its own.
    const long = `0.${'0'.repeat(9000)}1`;
    b.pushText('1');
    b.pushText(long);
    b.pushText('z');
    assert.deepEqual(b.finish().values, ['1', long, 'z']);
  });

  void test('a declared column is built as its type and refuses a cell that does not fit', () => {
    const b = new ColumnBuilder('n', { type: 'numeric', rows: 2 });
    b.pushText('1');
    b.pushText('NA');
    assert.deepEqual(b.finish(), { name: 'n', type: 'numeric', values: Float64Array.of(1, Number.NaN) });
    const strict = new ColumnBuilder('n', { type: 'numeric', rows: 2 });
    assert.throws(() => strict.pushText('abc'), (err: unknown) => err instanceof DatasetParseError && err.field === 'n');
    const cat = new ColumnBuilder('c', { type: 'categorical', rows: 2 });
    cat.pushText('1');
    cat.pushText('');
    assert.deepEqual(cat.finish().values, ['1', null]);
  });
});

void describe('tableFromJsonRows', () => {
  void test('types columns like CSV, unions keys, missing keys are missing cells', () => {
    const t = tableFromJsonRows([
      { x: 1, flag: true, name: 'a', s: '2.5' },
      { x: null, flag: 'no', name: 3, extra: 'e' },
      { x: 2.5, flag: null, name: 'NA', s: 'N/A' },
    ]);
    assert.equal(t.rowCount, 3);
    assert.deepEqual(columnNames(t), ['x', 'flag', 'name', 's', 'extra']);
    assert.deepEqual(
      t.columns.map((c) => c.type),
      ['numeric', 'boolean', 'categorical', 'numeric', 'categorical'],
    );
    assert.deepEqual([...getColumn(t, 'x').values], [1, NaN, 2.5]);
    assert.deepEqual([...getColumn(t, 'flag').values], [1, 0, NaN]);
    assert.deepEqual(getColumn(t, 'name').values, ['a', '3', null]);
    assert.deepEqual([...getColumn(t, 's').values], [2.5, NaN, NaN]);
    assert.deepEqual(getColumn(t, 'extra').values, [null, 'e', null]);
    assert.equal(isMissingAt(getColumn(t, 'extra'), 0), true);
    assert.equal(cellText(getColumn(t, 'flag'), 0), 'true');
    assert.equal(cellText(getColumn(t, 'x'), 1), '');
  });

  void test('a number after booleans makes the column categorical', () => {
    const t = tableFromJsonRows([{ v: true }, { v: 1 }]);
    assert.deepEqual(getColumn(t, 'v'), { name: 'v', type: 'categorical', values: ['true', '1'] });
  });

  void test('errors name the row index and the field', () => {
    const cases: [unknown, RegExp, number | undefined, string | undefined][] = [
      [[{ a: 1 }, { a: { nested: 1 } }], /row 1, field "a": a object cannot be a table cell/, 1, 'a'],
      [[{ a: 1 }, { a: [1] }], /row 1, field "a": a array/, 1, 'a'],
      [[{ a: Infinity }], /row 0, field "a": value Infinity is not a finite number/, 0, 'a'],
      [[{ a: 1 }, 7], /row 1 is not an object/, 1, undefined],
      [[{ a: 1 }, { ' ': 2 }], /row 1 has an empty field name/, 1, ' '],
      [[], /no data rows/, undefined, undefined],
      [[{}], /no fields/, undefined, undefined],
      [{ rows: [] }, /must be an array/, undefined, undefined],
    ];
    for (const [rows, message, row, field] of cases) {
      assert.throws(
        () => tableFromJsonRows(rows),
        (err: unknown) => {
          assert.ok(err instanceof DatasetParseError);
          assert.match(err.message, message);
          assert.equal(err.row, row);
          assert.equal(err.field, field);
          assert.equal(err.status, 400);
          return true;
        },
      );
    }
  });

  void test('getColumn throws for unknown names, findColumn returns undefined', () => {
    const t = tableFromJsonRows([{ a: 1 }]);
    assert.equal(findColumn(t, 'b'), undefined);
    assert.throws(() => getColumn(t, 'b'), /no column named "b" \(columns: a\)/);
  });
});
