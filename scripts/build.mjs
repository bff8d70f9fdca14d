// `npm run build`: lib/ compiled twice, at once, into dist/esm (ES modules) and dist/cjs (CommonJS).
// Each tree gets a package.json that gives its .js and .d.ts files their module format, whatever
// the package's own "type" says.
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

process.chdir(fileURLToPath(new URL('..', import.meta.url)));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const builds = { esm: ['tsconfig.build.json', 'module'], cjs: ['tsconfig.build.cjs.json', 'commonjs'] };

rmSync('dist', { recursive: true, force: true });
const codes = await Promise.all(
  Object.values(builds).map(
    ([project]) => new Promise((resolve) => spawn(process.execPath, [tsc, '-p', project], { stdio: 'inherit' }).on('exit', resolve)),
  ),
);
if (codes.some((code) => code !== 0)) process.exit(1);
for (const [dir, [, type]] of Object.entries(builds)) writeFileSync(`dist/${dir}/package.json`, `{ "type": "${type}" }\n`);
