/**
 * The API key, kept in sessionStorage: entered once per browser tab session, gone when the tab
 * closes, never in localStorage or a cookie.
 */
const STORAGE_KEY = 'modelplane.apiKey';

export function currentKey(): string | undefined {
  try {
    const key = sessionStorage.getItem(STORAGE_KEY);
    return key === null || key === '' ? undefined : key;
  } catch {
    return undefined;
  }
}

export function storeKey(key: string): void {
  sessionStorage.setItem(STORAGE_KEY, key);
}

export function forgetKey(): void {
  sessionStorage.removeItem(STORAGE_KEY);
}
