import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import path from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App } from './app-type.ts';
import type { Logger } from 'pino';
import type { Store } from '../store/database.ts';
import { forbidden, unauthorized } from './errors.ts';
import { keysRepository, type ApiKeyRow } from './keys.repository.ts';

/** Roles in increasing power; each includes the ones before it. `public` needs no key. */
export const ROLES = ['read', 'predict', 'train', 'admin'] as const;
export type Role = (typeof ROLES)[number];
export type RouteRole = Role | 'public';

const RANK: Readonly<Record<RouteRole, number>> = { public: -1, read: 0, predict: 1, train: 2, admin: 3 };

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/** True when a key of role `have` may call a route that needs `need`. */
export function roleAllows(have: Role, need: RouteRole): boolean {
  return RANK[have] >= RANK[need];
}

/** Who is calling: attached to every authenticated request. */
export interface Principal {
  /** Key id (`env` for API_KEY). Safe to log. */
  readonly keyId: string;
  readonly name: string;
  readonly role: Role;
}

/** sha-256 of a key, hex. Keys are 256-bit random, so an unsalted fast hash is enough. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** A new random key: `mp_` + 43 base64url characters (256 bits). */
export function generateKey(): string {
  return `mp_${randomBytes(32).toString('base64url')}`;
}

interface CachedKey {
  readonly hash: Buffer;
  readonly principal: Principal;
}

export interface CreatedKey {
  readonly id: string;
  readonly name: string;
  readonly role: Role;
  /** The key itself; shown once, never stored. */
  readonly key: string;
}

/**
 * Holds the active keys in memory (by hash) so the request path does no I/O for known keys.
 * Keys created or revoked by another process (CLI, another replica) are picked up by a periodic
 * refresh; an unknown key is looked up in the store once and the miss remembered briefly, so a
 * flood of bad keys cannot turn into a flood of queries.
 */
export class KeyService {
  private byHash = new Map<string, CachedKey>();
  /**
   * Presented key -> entry, so a known key costs one map lookup instead of a sha-256 per request.
   * Rebuilt on every refresh (revocations take effect there) and bounded in size.
   */
  private byKey = new Map<string, CachedKey>();
  private misses = new Map<string, number>();
  private used = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly envKey: string | undefined,
    private readonly log: Logger,
    private readonly refreshMs = 10_000,
  ) {}

  /** Loads keys and starts the refresh timer. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => {
      this.refresh().catch((err: unknown) => this.log.warn({ err }, 'API key refresh failed'));
    }, this.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  /** Reloads active keys from the store and records which keys were used since last time. */
  async refresh(): Promise<void> {
    const used = [...this.used].filter((id) => id !== 'env');
    this.used.clear();
    await keysRepository.touch(this.store.db, used, Date.now());
    const rows = await keysRepository.listActive(this.store.db);
    const next = new Map<string, CachedKey>();
    for (const row of rows) next.set(row.key_hash, toCached(row));
    if (this.envKey !== undefined) {
      const h = hashKey(this.envKey);
      next.set(h, { hash: Buffer.from(h, 'hex'), principal: { keyId: 'env', name: 'API_KEY', role: 'admin' } });
    }
    this.byHash = next;
    this.byKey = new Map();
    this.misses.clear();
  }

  /**
   * The principal for a presented key from memory alone: a `Principal`, `null` for a key known to
   * be bad, or `undefined` when the store must be asked (see `authenticate`).
   */
  lookupCached(key: string): Principal | null | undefined {
    const known = this.byKey.get(key);
    if (known !== undefined) {
      this.used.add(known.principal.keyId);
      return known.principal;
    }
    const h = hashKey(key);
    const cached = this.byHash.get(h);
    if (cached === undefined) {
      const missedAt = this.misses.get(h);
      return missedAt !== undefined && Date.now() - missedAt < 5_000 ? null : undefined;
    }
    // The map lookup already matched; the constant-time compare keeps any future change of lookup
    // structure from leaking timing about stored hashes.
    if (!timingSafeEqual(cached.hash, Buffer.from(h, 'hex'))) return null;
    if (this.byKey.size >= 10_000) this.byKey.clear();
    this.byKey.set(key, cached);
    this.used.add(cached.principal.keyId);
    return cached.principal;
  }

  /** The principal for a presented key, or `undefined` when the key is unknown or revoked. */
  async authenticate(key: string): Promise<Principal | undefined> {
    const cached = this.lookupCached(key);
    if (cached !== undefined) return cached ?? undefined;
    const h = hashKey(key);
    const row = await keysRepository.findByHash(this.store.db, h);
    if (row === undefined || row.revoked_at !== null) {
      if (this.misses.size > 10_000) this.misses.clear();
      this.misses.set(h, Date.now());
      return undefined;
    }
    const entry = toCached(row);
    this.byHash.set(h, entry);
    this.used.add(entry.principal.keyId);
    return entry.principal;
  }

  /** Creates a key; the returned `key` is the only copy. */
  async create(name: string, role: Role, actor: string): Promise<CreatedKey> {
    const key = generateKey();
    const id = randomUUID();
    const now = Date.now();
    await this.store.db.transaction().execute(async (trx) => {
      await keysRepository.insert(trx, {
        id,
        name,
        role,
        key_hash: hashKey(key),
        prefix: key.slice(0, 7),
        created_at: now,
        last_used_at: null,
        revoked_at: null,
      });
      await keysRepository.audit(trx, { at: now, actor, action: 'key.create', target: `key:${id}`, details: { name, role } });
    });
    await this.refresh();
    return { id, name, role, key };
  }

  async list(): Promise<ApiKeyRow[]> {
    return keysRepository.listAll(this.store.db);
  }

  /** Revokes by id or name; returns how many keys were revoked. */
  async revoke(idOrName: string, actor: string): Promise<number> {
    const now = Date.now();
    const rows = await this.store.db.transaction().execute(async (trx) => {
      const revoked = await keysRepository.revoke(trx, idOrName, now);
      for (const r of revoked) {
        await keysRepository.audit(trx, { at: now, actor, action: 'key.revoke', target: `key:${r.id}`, details: { name: r.name } });
      }
      return revoked;
    });
    await this.refresh();
    return rows.length;
  }
}

function toCached(row: ApiKeyRow): CachedKey {
  const role: Role = isRole(row.role) ? row.role : 'read';
  return { hash: Buffer.from(row.key_hash, 'hex'), principal: { keyId: row.id, name: row.name, role } };
}

/**
 * With no key configured at all (no API_KEY, no stored key), creates an admin key, writes it to
 * `<dataDir>/admin.key` with mode 0600 and returns it so the caller can print it once. There is
 * deliberately no built-in default key.
 */
export async function ensureBootstrapKey(store: Store, envKey: string | undefined, dataDir: string): Promise<CreatedKey | undefined> {
  if (envKey !== undefined) return undefined;
  if ((await keysRepository.count(store.db)) > 0) return undefined;
  const key = generateKey();
  const id = randomUUID();
  const now = Date.now();
  await store.db.transaction().execute(async (trx) => {
    await keysRepository.insert(trx, {
      id,
      name: 'bootstrap-admin',
      role: 'admin',
      key_hash: hashKey(key),
      prefix: key.slice(0, 7),
      created_at: now,
      last_used_at: null,
      revoked_at: null,
    });
    await keysRepository.audit(trx, { at: now, actor: 'bootstrap', action: 'key.create', target: `key:${id}`, details: { name: 'bootstrap-admin', role: 'admin' } });
  });
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(path.join(dataDir, 'admin.key'), `${key}\n`, { mode: 0o600 });
  return { id, name: 'bootstrap-admin', role: 'admin', key };
}

/**
 * Extracts the presented key from `X-API-Key`, `Authorization: Bearer` or Basic (password part),
 * of a Fastify request or a plain `node:http` one (the metrics listener).
 */
export function presentedKey(request: { readonly headers: IncomingHttpHeaders }): string | undefined {
  const header = request.headers['x-api-key'];
  if (typeof header === 'string' && header !== '') return header;
  const authz = request.headers.authorization;
  if (authz === undefined) return undefined;
  const space = authz.indexOf(' ');
  if (space < 0) return undefined;
  const scheme = authz.slice(0, space).toLowerCase();
  const value = authz.slice(space + 1).trim();
  if (scheme === 'bearer') return value === '' ? undefined : value;
  if (scheme === 'basic') {
    // MLflow clients with MLFLOW_TRACKING_USERNAME/PASSWORD send Basic auth: the password is the key.
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const password = colon < 0 ? '' : decoded.slice(colon + 1);
    return password === '' ? undefined : password;
  }
  return undefined;
}

/** One registered route and the role it needs (for audits and the route-enumeration test). */
export interface RouteRoleEntry {
  readonly method: string;
  readonly url: string;
  readonly role: RouteRole;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every registered route with its role, in registration order. */
    routeRoles: readonly RouteRoleEntry[];
  }
  interface FastifyContextConfig {
    /** The least role that may call this route; every route must declare one. */
    role?: RouteRole;
  }
  interface FastifyRequest {
    principal: Principal | undefined;
  }
}

/**
 * Enforces each route's declared role. Routes declare it once, in `config.role`; a route
 * registered without one makes start-up fail, so nothing is left unprotected by accident.
 * `publicPrefixes` lets third-party plugins (Swagger UI) whose routes cannot carry our config be
 * marked public explicitly.
 */
export function installAuth(app: App, keys: KeyService, publicPrefixes: readonly string[], metricsRole: RouteRole): void {
  app.decorateRequest('principal', undefined);
  const table: RouteRoleEntry[] = [];
  app.decorate('routeRoles', table);
  app.addHook('onRoute', (route) => {
    const url = route.url ?? route.path;
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).map(String);
    let role = route.config?.role;
    if (role === undefined) {
      // CORS preflights (registered by @fastify/cors as `OPTIONS *`) must answer without a key.
      if (publicPrefixes.some((p) => url === p || url.startsWith(`${p}/`)) || methods.every((m) => m === 'OPTIONS')) role = 'public';
      else if (url === '/metrics' || url === '/prometheus-metrics') role = metricsRole;
      else throw new Error(`route ${methods.join(',')} ${url} declares no role (config.role)`);
      route.config = { ...route.config, role };
    }
    for (const method of methods) table.push({ method, url, role });
  });
  const admit = (request: FastifyRequest, need: RouteRole, principal: Principal | null | undefined): void => {
    if (principal === null || principal === undefined) throw unauthorized('unknown or revoked API key');
    if (!roleAllows(principal.role, need)) {
      throw forbidden(`this route needs role '${need}'; the key has role '${principal.role}'`);
    }
    request.principal = principal;
  };
  /**
   * The check of one route, bound to its role at registration: a route-level hook reads nothing
   * per request but the key (a global hook would have to read `request.routeOptions`, which
   * Fastify rebuilds on every access). Callback style: a known key is checked synchronously, with
   * no promise on the hot path. Unmatched URLs (404) have no route, so nothing to protect there.
   */
  const check =
    (need: RouteRole) =>
    (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void => {
      const key = presentedKey(request);
      if (key === undefined) {
        done(unauthorized('an API key is required: send X-API-Key or Authorization: Bearer'));
        return;
      }
      const cached = keys.lookupCached(key);
      if (cached !== undefined) {
        try {
          admit(request, need, cached);
          done();
        } catch (err) {
          done(err as Error);
        }
        return;
      }
      keys.authenticate(key).then(
        (principal) => {
          admit(request, need, principal);
          done();
        },
      ).catch((err: unknown) => done(err as Error));
    };
  app.addHook('onRoute', (route) => {
    const need = route.config?.role;
    if (need === undefined || need === 'public') return;
    const own = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest];
    route.onRequest = [check(need), ...own];
  });
}
