import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';

/** Compiles the library and the test fixtures for the tests that run instances as separate Node processes. */
export default function globalSetup() {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'test/tsconfig.fixtures.json'], { stdio: 'inherit' });
}
