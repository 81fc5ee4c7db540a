/** Datasets: stored and built-in ones, and a CSV upload (a new version of a named dataset) with progress. */
import { useRef, useState, type FormEvent } from 'react';
import { api, unwrap } from '../api/client.ts';
import { ErrorView } from '../components/error-view.tsx';
import { GuardedButton } from '../components/guarded.tsx';
import { Loading, Page, Section } from '../components/page.tsx';
import { useAuth } from '../lib/auth.tsx';
import { formatBytes, formatTime } from '../lib/format.ts';
import { Link, navigate, seg, withQuery } from '../lib/router.tsx';
import { uploadCsv } from '../lib/upload.ts';
import { useData } from '../lib/use-data.ts';

export default function DatasetsPage() {
  const list = useData((signal) => unwrap(api.GET('/datasets', { params: { query: { limit: 1000 } }, signal })), []);
  return (
    <Page title="Datasets">
      <div className="columns wide-left">
        <Section title="All datasets">
          <ErrorView error={list.error} />
          {list.loading && list.data === undefined && <Loading what="datasets" />}
          {list.data !== undefined && (
            <div className="table-wrap">
              <table>
                <caption className="visually-hidden">Datasets</caption>
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col" className="num">
                      Versions
                    </th>
                    <th scope="col" className="num">
                      Latest
                    </th>
                    <th scope="col">Updated</th>
                  </tr>
                </thead>
                <tbody>
                  {list.data.datasets.map((d) => (
                    <tr key={d.name}>
                      <th scope="row">
                        <Link to={`/datasets/${seg(d.name)}`}>{d.name}</Link>
                        {d.builtin_info !== undefined && (
                          <div className="hint">
                            built-in: {d.builtin_info.description} ({d.builtin_info.task}, target {d.builtin_info.target})
                          </div>
                        )}
                      </th>
                      <td className="num">{d.version_count}</td>
                      <td className="num">{d.latest_version ?? '—'}</td>
                      <td>{formatTime(d.updated_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </Section>
        <Section title="Upload a CSV">
          <UploadForm onDone={() => list.reload()} />
        </Section>
      </div>
    </Page>
  );
}

function UploadForm({ onDone }: { onDone: () => void }) {
  const { need } = useAuth();
  const [name, setName] = useState('');
  const [file, setFile] = useState<File | undefined>(undefined);
  const [progress, setProgress] = useState<{ loaded: number; total: number } | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const controller = useRef<AbortController | undefined>(undefined);
  const denied = need('train');

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (file === undefined || name.trim() === '') return;
    setError(undefined);
    setBusy(true);
    setProgress({ loaded: 0, total: file.size });
    controller.current = new AbortController();
    try {
      const version = await uploadCsv(name.trim(), file, (loaded, total) => setProgress({ loaded, total }), controller.current.signal);
      onDone();
      navigate(withQuery(`/datasets/${seg(version.name)}`, { version: version.version }));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="stack" onSubmit={(e) => void submit(e)}>
      <div className="field">
        <label htmlFor="upload-name">Dataset name</label>
        <input
          id="upload-name"
          value={name}
          onChange={(e) => setName(e.target.value)}
          disabled={denied !== undefined}
          aria-describedby="upload-name-hint"
          pattern="[A-Za-z0-9._\-]+"
        />
        <p id="upload-name-hint" className="hint">
          An existing name adds a version.
        </p>
      </div>
      <div className="field">
        <label htmlFor="upload-file">CSV file (header row; , ; tab or | delimited)</label>
        <input
          id="upload-file"
          type="file"
          accept=".csv,.tsv,.txt,text/csv"
          disabled={denied !== undefined}
          onChange={(e) => {
            const f = e.target.files?.[0];
            setFile(f);
            if (f !== undefined && name === '') setName(f.name.replace(/\.[^.]+$/, '').replace(/[^A-Za-z0-9._-]+/g, '-'));
          }}
        />
      </div>
      {progress !== undefined && (
        <div className="field">
          <label htmlFor="upload-progress">
            {busy ? 'Uploading' : 'Uploaded'} {formatBytes(progress.loaded)} of {formatBytes(progress.total)}
          </label>
          <progress id="upload-progress" max={progress.total || 1} value={progress.loaded} />
        </div>
      )}
      <ErrorView error={error} title="Upload" />
      <div className="row">
        <GuardedButton need="train" type="submit" className="primary" disabled={busy || file === undefined || name.trim() === ''}>
          {busy ? 'Uploading…' : 'Upload'}
        </GuardedButton>
        {busy && (
          <button type="button" onClick={() => controller.current?.abort()}>
            Cancel upload
          </button>
        )}
      </div>
    </form>
  );
}
