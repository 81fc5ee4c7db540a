/**
 * Child processes of the cluster harness: each one logs to its own file, remembers every exit
 * (expected or not) and is killed when the harness exits, however it exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';

/** One exit of a managed process. */
export interface ExitRecord {
  /** `Date.now()` of the exit. */
  readonly at: number;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** True when the harness asked for it (stop, kill -9 of a scenario). */
  readonly expected: boolean;
}

export interface ProcessSpec {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  /** Run as this user (PostgreSQL refuses root). */
  readonly uid?: number;
  readonly gid?: number;
}

const everyProcess = new Set<ManagedProcess>();

/** SIGKILLs every child still alive; safe to call from a synchronous 'exit' handler. */
export function killAllSync(): void {
  for (const p of everyProcess) p.killNow();
}

/** A child process with a log file and an exit history. */
export class ManagedProcess {
  private child: ChildProcess | undefined;
  private expectingExit = false;
  private exitWaiters: Array<(r: ExitRecord) => void> = [];
  readonly exits: ExitRecord[] = [];
  /** `Date.now()` of the latest start. */
  startedAt = 0;
  /** Size of the log file at the latest start (what this run wrote starts there). */
  private logOffset = 0;

  constructor(
    readonly name: string,
    private spec: ProcessSpec,
    readonly logFile: string,
  ) {
    everyProcess.add(this);
  }

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Replaces parts of the spec for the next start (e.g. another port). */
  respec(change: Partial<ProcessSpec>): void {
    this.spec = { ...this.spec, ...change };
  }

  start(): void {
    if (this.running) throw new Error(`${this.name} is already running`);
    this.logOffset = this.logSize();
    const fd = openSync(this.logFile, 'a');
    try {
      const child = spawn(this.spec.command, [...this.spec.args], {
        cwd: this.spec.cwd,
        env: this.spec.env,
        stdio: ['ignore', fd, fd],
        ...(this.spec.uid === undefined ? {} : { uid: this.spec.uid }),
        ...(this.spec.gid === undefined ? {} : { gid: this.spec.gid }),
      });
      this.child = child;
      this.expectingExit = false;
      this.startedAt = Date.now();
      child.on('error', () => undefined);
      child.on('exit', (code, signal) => {
        const record: ExitRecord = { at: Date.now(), code, signal, expected: this.expectingExit };
        this.exits.push(record);
        const waiters = this.exitWaiters;
        this.exitWaiters = [];
        for (const w of waiters) w(record);
      });
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Sends `signal` and waits up to `deadlineMs` for the exit; SIGKILL after that. Resolves with
   * the exit record, or undefined when it was not running.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', deadlineMs = 15_000): Promise<ExitRecord | undefined> {
    if (!this.running) return undefined;
    this.expectingExit = true;
    const exited = this.waitExit();
    this.child?.kill(signal);
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), deadlineMs);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves at the next exit. */
  waitExit(): Promise<ExitRecord> {
    return new Promise((resolve) => this.exitWaiters.push(resolve));
  }

  /** Marks the next exit as expected without signalling (a scenario signals it itself). */
  expectExit(): void {
    this.expectingExit = true;
  }

  /** Sends a signal without waiting; the exit counts as expected. */
  signal(signal: NodeJS.Signals): void {
    this.expectingExit = true;
    this.child?.kill(signal);
  }

  /** Exits the harness did not ask for, since `since` (ms epoch). */
  unexpectedExitsSince(since: number): ExitRecord[] {
    return this.exits.filter((e) => !e.expected && e.at >= since);
  }

  killNow(): void {
    if (this.running) {
      this.expectingExit = true;
      try {
        this.child?.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  /** The last `n` lines of the log, for failure reports. */
  tail(n = 15): string {
    if (!existsSync(this.logFile)) return '';
    const lines = readFileSync(this.logFile, 'utf8').split('\n').filter((l) => l.trim() !== '');
    return lines.slice(-n).join('\n');
  }

  /** The first log line since byte `offset` that matches `re`, shortened, for failure reports. */
  findInLog(re: RegExp, offset = 0): string | undefined {
    if (!existsSync(this.logFile)) return undefined;
    const text = readFileSync(this.logFile, 'utf8').slice(offset);
    const line = text.split('\n').find((l) => re.test(l));
    return line === undefined ? undefined : shorten(line, 240);
  }

  /**
   * Why the latest run died, from what it wrote to stderr: the thrown error's first line and,
   * for an unhandled 'error' event, the emitter (`Unhandled 'error' event on BoundPool: error:
   * terminating connection due to administrator command`). Undefined when nothing says.
   */
  crashSummary(): string | undefined {
    if (!existsSync(this.logFile)) return undefined;
    const lines = readFileSync(this.logFile, 'utf8').slice(this.logOffset).split('\n');
    const plain = lines.filter((l) => l.trim() !== '' && !l.startsWith('{'));
    const fatal = lines.filter((l) => l.startsWith('{"level":60')).map((l) => shorten(l, 200));
    const unhandled = plain.some((l) => l.includes("Unhandled 'error' event"));
    const thrown = plain.find((l) => /^\S*(Error|error)\b.*:/.test(l) || /^modelplane: /.test(l));
    const emitter = plain.find((l) => l.startsWith("Emitted 'error' event on"))?.replace(/^Emitted 'error' event on (\S+).*$/, '$1');
    const parts = [unhandled ? `unhandled 'error' event${emitter === undefined ? '' : ` on ${emitter}`}` : undefined, thrown === undefined ? undefined : shorten(thrown, 160), ...fatal];
    const said = parts.filter((x): x is string => x !== undefined);
    return said.length === 0 ? undefined : said.join(': ');
  }

  logSize(): number {
    return existsSync(this.logFile) ? readFileSync(this.logFile).length : 0;
  }
}

export function shorten(s: string, max: number): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length <= max ? one : `${one.slice(0, max - 1)}…`;
}

export function describeExit(e: ExitRecord): string {
  return e.signal !== null ? `killed by ${e.signal}` : `exit code ${e.code}`;
}
