import { pino, type Logger, type LoggerOptions } from 'pino';
import type { Config } from '../config.ts';

/**
 * Header and field paths that can carry secrets. Fastify's request serializer logs no headers,
 * but anything that logs a request or a config object by hand is covered too.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-api-key"]',
  'apiKey',
  'key',
  'password',
  'config.apiKey',
  'databaseUrl',
  'redisUrl',
];

/**
 * JSON lines in production; human-readable (pino-pretty) when the configuration says so
 * (`LOG_FORMAT`, by default on a terminal outside CI). Every line logged inside a request carries
 * its `reqId` (Fastify's child logger).
 */
export function createLogger(config: Pick<Config, 'logLevel'> & Partial<Pick<Config, 'logPretty'>>, opts: { pretty?: boolean; destination?: NodeJS.WritableStream } = {}): Logger {
  const pretty = opts.pretty ?? config.logPretty ?? false;
  const options: LoggerOptions = {
    level: config.logLevel,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (opts.destination !== undefined) return pino(options, opts.destination as never);
  if (pretty) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } });
  }
  return pino(options);
}
