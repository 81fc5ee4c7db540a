/**
 * CSV upload with progress. fetch() cannot report upload progress, so this one request uses
 * XMLHttpRequest; it carries the key like every other call and its answer is typed from the
 * OpenAPI document.
 */
import { ApiError } from '../api/client.ts';
import type { paths } from '../api/schema.d.ts';
import { currentKey } from './key-store.ts';

export type UploadResult = paths['/datasets/{name}']['post']['responses'][201]['content']['application/json'];

export function uploadCsv(name: string, file: Blob, onProgress: (loaded: number, total: number) => void, signal?: AbortSignal): Promise<UploadResult> {
  return new Promise((resolve, reject) => {
    const key = currentKey();
    if (key === undefined) {
      reject(new Error('no API key entered yet'));
      return;
    }
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/datasets/${encodeURIComponent(name)}`);
    xhr.setRequestHeader('X-API-Key', key);
    xhr.setRequestHeader('Content-Type', 'text/csv');
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => {
      let body: unknown = xhr.responseText;
      try {
        body = JSON.parse(xhr.responseText) as unknown;
      } catch {
        // not JSON: keep the text
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body as UploadResult);
      else reject(new ApiError(xhr.status, body, xhr.getResponseHeader('x-request-id')));
    };
    xhr.onerror = () => reject(new TypeError('the upload failed before the server answered'));
    xhr.onabort = () => reject(new DOMException('upload cancelled', 'AbortError'));
    signal?.addEventListener('abort', () => xhr.abort());
    xhr.send(file);
  });
}
