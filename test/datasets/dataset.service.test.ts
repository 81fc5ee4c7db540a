import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { ArtifactStore } from '../../src/artifacts/artifact-store.ts';
import { loadBuiltinDataset } from '../../src/datasets/builtin.ts';
import { DatasetService } from '../../src/datasets/dataset.service.ts';
import { AppError } from '../../src/platform/errors.ts';
import { buildTestApp, storeBackends, type TestApp } from '../helper.ts';

for (const backend of await storeBackends()) {
  void describe(`dataset service (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp({ backend });
    });
    after(async () => {
      await t.close();
    });

    void test('concurrent uploads to one name get distinct consecutive versions', async () => {
      const service = t.services.datasets;
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => service.uploadCsv('busy', `a,b\n${i},x\n`, { actor: 'test' })));
      assert.deepEqual(
        results.map((r) => r.version).sort((a, b) => a - b),
        [1, 2, 3, 4, 5, 6],
      );
      // Each version holds the bytes of the upload that got its number.
      for (const r of results) {
        const { table } = await service.loadTable('busy', r.version);
        assert.equal(table.rowCount, 1);
        assert.equal(r.sha256.length, 64);
      }
    });

    void test('a stored version loads back as the same typed table; built-ins are stored once even when raced', async () => {
      const [a, b, c] = await Promise.all([
        t.services.datasets.ensureBuiltin('synthetic_classification'),
        t.services.datasets.resolveVersion('synthetic_classification'),
        t.services.datasets.loadTable('synthetic_classification', 1),
      ]);
      assert.equal(a.version, 1);
      assert.equal(b.version, 1);
      assert.equal(a.sha256, b.sha256);
      const original = loadBuiltinDataset('synthetic_classification');
      const loaded = c.table;
      assert.equal(loaded.rowCount, original.rowCount);
      assert.deepEqual(
        loaded.columns.map((col) => col.name),
        original.columns.map((col) => col.name),
      );
      for (let j = 0; j < original.columns.length; j++) {
        assert.deepEqual(loaded.columns[j]!.values, original.columns[j]!.values);
      }
      const detail = await t.services.datasets.getDataset('synthetic_classification');
      assert.equal(detail.versionCount, 1);
      assert.equal(detail.builtin?.task, 'classification');
    });

    void test('when the artifact store fails mid-upload, the version is released and the error surfaces', async () => {
      const failing: ArtifactStore = {
        ...t.backends.artifacts,
        description: 'failing',
        put: async (_key, body) => {
          if (body instanceof Readable) body.destroy();
          throw new Error('bucket unavailable');
        },
        delete: (key) => t.backends.artifacts.delete(key),
      };
      const service = new DatasetService({ store: t.backends.store, artifacts: failing, log: t.ctx.log, maxBytes: 1 << 20 });
      await assert.rejects(service.uploadCsv('flaky', 'a\n1\n2\n', { actor: 'test' }), /bucket unavailable/);
      await assert.rejects(t.services.datasets.resolveVersion('flaky'), (err: unknown) => err instanceof AppError && err.status === 404);
      const ok = await t.services.datasets.uploadCsv('flaky', 'a\n1\n', { actor: 'test' });
      assert.equal(ok.version, 1);
    });

    void test('JSON rows: errors name the row and field; a stored version keeps types', async () => {
      const service = t.services.datasets;
      await assert.rejects(service.uploadRows('rows', 'not rows', { actor: 'test' }), (err: unknown) => err instanceof AppError && err.status === 400);
      await assert.rejects(service.uploadRows('rows', [{ a: 1 }, { a: [1] }], { actor: 'test' }), (err: unknown) => {
        assert.ok(err instanceof AppError);
        assert.equal(err.errors?.[0]?.path, '/body/rows/1/a');
        return true;
      });
      const v = await service.uploadRows('rows', [{ a: 1, b: true, c: 'x' }, { a: 2.5, b: false, c: null }], { actor: 'test' });
      assert.deepEqual(
        v.schema?.columns.map((c) => c.type),
        ['numeric', 'boolean', 'categorical'],
      );
      const { table } = await service.loadTable('rows', v.version);
      assert.deepEqual(table.columns[2]!.values, ['x', null]);
    });
  });
}
