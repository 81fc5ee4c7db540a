/** Small helpers every benchmark script uses. */
import { createServer } from 'node:net';

/** A TCP port free on 127.0.0.1 right now (for a server the benchmark starts). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A numeric command-line option: `--name <value>`, else `fallback`. */
export function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** One line of the report on stdout. */
export function print(line = ''): void {
  process.stdout.write(`${line}\n`);
}
