import { ConsoleLogger, Logger, type LogLevel } from '@nestjs/common';

/** Where the test environment (log-on-failure-environment.cjs) finds this file's logger. */
const TEST_LOGS = Symbol.for('nestjs-domain-events:test-logs');

/**
 * Keeps what Nest logs during a test (handler failures on purpose, connection notices) and prints
 * it only when the test fails, so that `npm test` shows the stack traces of real failures only.
 * Levels work as usual (`logger: ['error']`, `logger: false`), so do spies on Logger.
 */
class LogOnFailure extends ConsoleLogger {
  private kept: Array<() => void> = [];

  override log(message: unknown, ...params: unknown[]) {
    this.keep('log', () => super.log(message, ...params));
  }

  override error(message: unknown, ...params: unknown[]) {
    this.keep('error', () => super.error(message, ...params));
  }

  override warn(message: unknown, ...params: unknown[]) {
    this.keep('warn', () => super.warn(message, ...params));
  }

  override debug(message: unknown, ...params: unknown[]) {
    this.keep('debug', () => super.debug(message, ...params));
  }

  override verbose(message: unknown, ...params: unknown[]) {
    this.keep('verbose', () => super.verbose(message, ...params));
  }

  override fatal(message: unknown, ...params: unknown[]) {
    this.keep('fatal', () => super.fatal(message, ...params));
  }

  /** Called as each test ends: prints what it logged if it failed (`failed` names it), and forgets it either way. */
  end(failed: string | undefined): void {
    const kept = this.kept;
    this.kept = [];
    if (!failed || kept.length === 0) return;
    process.stdout.write(`\n--- what Nest logged during "${failed}" ---\n`);
    for (const print of kept) print();
  }

  private keep(level: LogLevel, print: () => void): void {
    if (this.isLevelEnabled(level)) this.kept.push(print);
  }
}

// TEST_LOGS=all shows every log as it happens.
if (process.env.TEST_LOGS !== 'all') {
  const logger = new LogOnFailure();
  Logger.overrideLogger(logger);
  (globalThis as Record<symbol, unknown>)[TEST_LOGS] = logger;
}
