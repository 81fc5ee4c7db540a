/**
 * MLflow's artifact proxy (`/api/2.0/mlflow-artifacts/artifacts/...`): what a client does with an
 * `mlflow-artifacts:/<path>` URI. Runs created here have the artifact URI
 * `mlflow-artifacts:/runs/<run_id>/artifacts`, so paths under `runs/<run_id>/artifacts/` are a
 * run's files (upload, download, list, delete through the run artifacts service: the run must
 * exist, and be active to change its files); paths under `models/<name>/<version>/` are a
 * registered version's bundle (read only), which `get-download-uri` hands out for uploaded
 * versions. Bodies are streamed both ways, on the local and the S3 store alike.
 */
import type { Readable } from 'node:stream';
import type { ArtifactStore } from '../artifacts/artifact-store.ts';
import { ArtifactNotFoundError } from '../artifacts/errors.ts';
import type { App } from '../platform/app-type.ts';
import type { Registry } from '../registry/registry.service.ts';
import type { Tracking } from '../tracking/tracking.service.ts';
import { validateArtifactPath } from '../tracking/validation.ts';
import { MlflowReply } from './route.ts';
import { fileInfoView } from './views.ts';
import { invalidValue, mlflowError, sendMessage } from './wire.ts';

/** A proxy path, split into what it addresses. */
type Target =
  | { readonly kind: 'run'; readonly runId: string; readonly path: string }
  | { readonly kind: 'model'; readonly name: string; readonly version: number; readonly path: string };

const RUN_PATH = /^runs\/([A-Za-z0-9_-]{1,128})\/artifacts(?:\/(.*))?$/;
const MODEL_PATH = /^models\/(.+?)\/([0-9]{1,10})(?:\/(.*))?$/;

function target(raw: string): Target {
  const path = raw.replace(/^\/+/, '').replace(/\/+$/, '');
  const run = RUN_PATH.exec(path);
  if (run !== null) return { kind: 'run', runId: run[1]!, path: validateArtifactPath(run[2] ?? '', true) };
  const model = MODEL_PATH.exec(path);
  if (model !== null) return { kind: 'model', name: model[1]!, version: Number(model[2]), path: validateArtifactPath(model[3] ?? '', true) };
  throw invalidValue(`artifact path '${raw}' is outside this server's artifact roots (runs/<run_id>/artifacts/... or models/<name>/<version>/...)`);
}

const SUMMARY = 'MLflow artifact proxy';

/** The artifact proxy routes, relative to `/api/2.0/mlflow-artifacts`. */
export function mlflowArtifactRoutes(scope: App, deps: { tracking: Tracking; registry: Registry; artifacts: ArtifactStore }): void {
  const { tracking, registry, artifacts } = deps;
  const schema = (summary: string) => ({ summary, tags: ['mlflow'], response: { 200: MlflowReply } });

  // Uploads are any content type and are passed on as the request stream, never buffered.
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser('*', (_request, payload, done) => {
    done(null, payload);
  });

  const modelFolder = async (t: Extract<Target, { kind: 'model' }>): Promise<string> => {
    await registry.models.getVersion(t.name, t.version);
    return `models/${t.name}/${t.version}/`;
  };

  // Streamed to the artifact store, never held in memory: BODY_LIMIT_BYTES (a limit on buffered
  // bodies) does not apply, as MLflow's own proxy has none; the store's capacity is the bound.
  const STREAMED = { bodyLimit: Number.MAX_SAFE_INTEGER };
  scope.put('/artifacts/*', { ...STREAMED, config: { role: 'train' }, schema: schema(`${SUMMARY}: upload a run's file (streamed)`) }, async (request, reply) => {
    const t = target((request.params as { '*': string })['*']);
    if (t.kind !== 'run') throw invalidValue('model version files are read-only here; log files to a run');
    if (t.path === '') throw invalidValue('the upload path must name a file under the run artifact root');
    const body = request.body as Readable | undefined;
    await tracking.artifacts.logArtifact(t.runId, t.path, body ?? Buffer.alloc(0));
    return sendMessage(reply);
  });

  scope.get('/artifacts/*', { config: { role: 'read' }, schema: schema(`${SUMMARY}: download a file (streamed)`) }, async (request, reply) => {
    const t = target((request.params as { '*': string })['*']);
    if (t.path === '') throw invalidValue('the download path must name a file');
    let stream: Readable;
    if (t.kind === 'run') {
      stream = await tracking.artifacts.getArtifact(t.runId, t.path);
    } else {
      const key = (await modelFolder(t)) + t.path;
      try {
        stream = await artifacts.getStream(key);
      } catch (err) {
        if (err instanceof ArtifactNotFoundError) throw mlflowError('RESOURCE_DOES_NOT_EXIST', `artifact '${t.path}' not found in version ${t.version} of '${t.name}'`);
        throw err;
      }
    }
    return reply.code(200).type('application/octet-stream').send(stream);
  });

  scope.get('/artifacts', { config: { role: 'read' }, schema: schema(`${SUMMARY}: list a folder`) }, async (request, reply) => {
    const raw = (request.query as { path?: unknown }).path;
    const t = target(typeof raw === 'string' ? raw : '');
    const strip = (p: string): string => (t.path === '' ? p : p.slice(t.path.length + 1));
    if (t.kind === 'run') {
      const files = await tracking.artifacts.listArtifacts(t.runId, t.path);
      return sendMessage(reply, { files: files.map((f) => fileInfoView({ ...f, path: strip(f.path) })) });
    }
    const prefix = (await modelFolder(t)) + (t.path === '' ? '' : `${t.path}/`);
    const seen = new Set<string>();
    const files: Record<string, unknown>[] = [];
    for (const info of await artifacts.list(prefix)) {
      const rest = info.key.slice(prefix.length);
      const slash = rest.indexOf('/');
      if (slash < 0) files.push(fileInfoView({ path: rest, isDir: false, fileSize: info.size }));
      else if (!seen.has(rest.slice(0, slash))) {
        seen.add(rest.slice(0, slash));
        files.push(fileInfoView({ path: rest.slice(0, slash), isDir: true }));
      }
    }
    return sendMessage(reply, { files });
  });

  scope.delete('/artifacts/*', { config: { role: 'train' }, schema: schema(`${SUMMARY}: delete a run's file or folder`) }, async (request, reply) => {
    const t = target((request.params as { '*': string })['*']);
    if (t.kind !== 'run') throw invalidValue('model version files are read-only here');
    await tracking.artifacts.deleteArtifacts(t.runId, t.path);
    return sendMessage(reply);
  });
}
