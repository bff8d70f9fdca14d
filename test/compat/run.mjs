// `npm run test:compat`: the package as users get it (npm pack), in scratch projects in a temp dir.
//   - nest11-cjs/: a CommonJS Nest 11 app as `nest new` lays it out (TypeScript 5.7, module commonjs,
//     moduleResolution node, skipLibCheck off). Compiled with tsc, run on memory and on NATS (two
//     processes and a nats-server of its own), its spec run by Jest 30 and by Jest 29 with the generated
//     ts-jest config; the same sources compiled with module nodenext (as recent `nest new` 11 generates it), and
//     run; the declarations of both builds with skipLibCheck off under nodenext (typecheck/).
//   - ES module apps on Nest 12 and on Nest 11 (esm-smoke.mjs); both builds in one process (dual-instance.mjs).
//   - The CommonJS app again on other Node versions (binaries from the npm `node` package): 20.0.0, before
//     require(esm), and the latest 22 and 24.
// Installs go through the npm cache; the Node binaries are kept in ~/.cache/nestjs-domain-events-compat.
// COMPAT_NODE_VERSIONS="22 24" chooses the other Node versions ("" for none); COMPAT_KEEP=1 keeps the temp dir.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const here = fileURLToPath(new URL('.', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'nestjs-domain-events-compat-'));
const cache = process.env.COMPAT_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'nestjs-domain-events-compat');
const otherNodes = (process.env.COMPAT_NODE_VERSIONS ?? '20.0.0 22 24').split(/\s+/).filter(Boolean);
const started = Date.now();
const running = new Set();
const results = [];

// Child processes are ours alone: each is stopped by its own pid, the scratch dir removed.
function cleanUp() {
  for (const child of running) child.kill('SIGKILL');
  if (!process.env.COMPAT_KEEP) rmSync(work, { recursive: true, force: true });
}
process.on('exit', cleanUp);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

// The environment of the scratch apps: the caller's, without event bus or NATS settings.
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(EVENT_BUS_|NATS_)/.test(key)));

function start(command, args, { cwd = work, env = {} } = {}) {
  const child = spawn(command, args, { cwd, env: { ...baseEnv, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let output = '';
  const listeners = new Set();
  const append = (chunk) => {
    output += chunk;
    for (const listener of listeners) listener();
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  const exited = new Promise((resolve) => child.on('close', (code, signal) => {
    running.delete(child);
    resolve({ code, signal });
  }));
  const describe = () => `${command} ${args.join(' ')} (in ${cwd})`;
  return {
    exited,
    output: () => output,
    /** Resolves with the first match of `pattern` in the output; rejects when the process ends or time is up. */
    waitFor(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const done = (error, match) => {
          clearTimeout(timer);
          listeners.delete(check);
          if (error) reject(new Error(`${error}: ${describe()}\n${output}`));
          else resolve(match);
        };
        const check = () => {
          const match = typeof pattern === 'string' ? output.includes(pattern) && [pattern] : output.match(pattern);
          if (match) done(undefined, match);
        };
        const timer = setTimeout(() => done(`timed out waiting for ${pattern}`), timeoutMs);
        listeners.add(check);
        exited.then(({ code, signal }) => done(`exited (${signal ?? code}) before printing ${pattern}`));
        check();
      });
    },
    /** SIGTERM, then the process must be gone within 10 s (Nest re-raises the signal after a clean close). */
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const { code, signal } = await exited;
      clearTimeout(timer);
      if (!(code === 0 || signal === 'SIGTERM')) throw new Error(`did not stop cleanly (${signal ?? code}): ${describe()}\n${output}`);
    },
  };
}

/** Runs a command to its end; resolves with its output, rejects with it when the exit code is not 0. */
async function run(command, args, options = {}) {
  const child = start(command, args, options);
  const timer = setTimeout(() => child.stop().catch(() => undefined), options.timeoutMs ?? 240_000);
  const { code, signal } = await child.exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`failed (${signal ?? code}): ${command} ${args.join(' ')} (in ${options.cwd ?? work})\n${child.output()}`);
  return child.output();
}

async function scenario(name, body) {
  const t0 = Date.now();
  try {
    const note = await body(); // a line to print after PASS, or nothing
    results.push({ name, ok: true });
    console.log(`PASS  ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)${note ? `: ${note}` : ''}`);
    return true;
  } catch (error) {
    results.push({ name, ok: false });
    console.log(`FAIL  ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n${String(error?.message ?? error).replace(/^/gm, '      ')}`);
    return false;
  }
}

const npmInstall = (cwd, packages = []) =>
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...packages], { cwd });
const versionIn = (dir, name) => JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')).version;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function natsServerBinary() {
  if (process.env.NATS_SERVER_BIN) return process.env.NATS_SERVER_BIN;
  for (const dir of (process.env.PATH ?? '').split(':').concat('/usr/sbin', '/usr/local/bin', '/usr/bin')) {
    if (dir && existsSync(join(dir, 'nats-server'))) return join(dir, 'nats-server');
  }
  throw new Error('nats-server not found: install it (apt-get install nats-server) or set NATS_SERVER_BIN');
}

let natsUrl;
async function nats() {
  if (!natsUrl) {
    const port = await freePort();
    const server = start(natsServerBinary(), ['-a', '127.0.0.1', '-p', String(port)]);
    await server.waitFor(/Server is ready/, 10_000);
    natsUrl = `nats://127.0.0.1:${port}`;
  }
  return natsUrl;
}

// The CommonJS app: `node dist/main.js` listens on a free port; POST /orders/<id> publishes OrderPlaced
// through the CQRS EventBus; each handler prints `handled <id> by <handler> (<local|remote|cqrs>, typed)`.
async function startApp(node, dir, main, env = {}) {
  const app = start(node, [main], { cwd: dir, env: { PORT: '0', ...env } });
  const [, url] = await app.waitFor(/listening on (http:\/\/\S+)/);
  return Object.assign(app, { url });
}

async function placeOrder(app, id) {
  const response = await fetch(`${app.url}/orders/${id}`, { method: 'POST' });
  if (response.status !== 202) throw new Error(`POST /orders/${id}: ${response.status} ${await response.text()}`);
}

const handled = (id, where) => [`handled ${id} by @OnDomainEvent (${where}, typed)`, `handled ${id} by @EventsHandler (cqrs, typed)`];
const waitForAll = (app, lines) => Promise.all(lines.map((line) => app.waitFor(line, 10_000)));

async function onMemory(node, dir, main) {
  const app = await startApp(node, dir, main);
  await placeOrder(app, 'o-memory');
  await waitForAll(app, handled('o-memory', 'local'));
  await app.stop();
}

async function onNats(node, dir, main) {
  const env = { EVENT_BUS_TRANSPORT: 'nats', NATS_URL: await nats() };
  const [publisher, subscriber] = await Promise.all([startApp(node, dir, main, env), startApp(node, dir, main, env)]);
  const id = `o-nats-${Math.random().toString(36).slice(2, 8)}`;
  await placeOrder(publisher, id);
  await Promise.all([waitForAll(publisher, handled(id, 'local')), waitForAll(subscriber, handled(id, 'remote'))]);
  await Promise.all([publisher.stop(), subscriber.stop()]);
}

const jest = async (node, dir) =>
  (await run(node, ['node_modules/jest/bin/jest.js', '--ci'], { cwd: dir, env: { CI: 'true' } })).match(/^Tests:.*$/m)?.[0];
const script = async (node, dir, ...args) => (await run(node, args, { cwd: dir })).trim().split('\n').pop();

// 1. The package, packed.
console.log(`scratch projects in ${work}`);
const tarball = join(work, 'package.tgz');
const packed = await scenario('npm pack (prepack builds)', async () => {
  const name = (await run('npm', ['pack', '--silent', '--pack-destination', work], { cwd: root })).trim().split('\n').pop();
  cpSync(join(work, name), tarball);
  return name;
});
if (!packed) process.exit(1);

// 2. Scratch projects and Node binaries, installed at once.
const cjsApp = join(work, 'nest11-cjs');
const jest29App = join(work, 'nest11-cjs-jest29');
const esmApp = join(work, 'nest12-esm');
const copyApp = (to) => cpSync(join(here, 'nest11-cjs'), to, { recursive: true, filter: (path) => !/[/\\](node_modules|dist[^/\\]*)$/.test(path) });
copyApp(cjsApp);
copyApp(jest29App);
const jest29Json = JSON.parse(readFileSync(join(jest29App, 'package.json'), 'utf8'));
Object.assign(jest29Json.devDependencies, { jest: '^29.7.0', '@types/jest': '^29.5.14' });
writeFileSync(join(jest29App, 'package.json'), JSON.stringify(jest29Json, null, 2));
mkdirSync(esmApp);
writeFileSync(join(esmApp, 'package.json'), JSON.stringify({ name: 'compat-nest12-esm', private: true, type: 'module' }));
for (const dir of [cjsApp, esmApp]) for (const file of ['esm-smoke.mjs', 'dual-instance.mjs']) cpSync(join(here, file), join(dir, file));

const nodes = {};
const installs = await Promise.all([
  scenario('install: CommonJS app, Nest 11, TypeScript 5.7, Jest 30', async () => {
    await npmInstall(cjsApp, [tarball]);
    return ['@nestjs/core', '@nestjs/cqrs', 'typescript', 'jest', 'ts-jest'].map((name) => `${name} ${versionIn(cjsApp, name)}`).join(', ');
  }),
  scenario('install: the same app with Jest 29', async () => {
    await npmInstall(jest29App, [tarball]);
    return `jest ${versionIn(jest29App, 'jest')}, ts-jest ${versionIn(jest29App, 'ts-jest')}`;
  }),
  scenario('install: ESM app, Nest 12', async () => {
    await npmInstall(esmApp, ['@nestjs/core@^12', '@nestjs/common@^12', '@nestjs/cqrs@^12', 'reflect-metadata', 'rxjs', tarball]);
    return ['@nestjs/core', '@nestjs/cqrs'].map((name) => `${name} ${versionIn(esmApp, name)}`).join(', ');
  }),
  ...otherNodes.map((version) =>
    scenario(`install: Node ${version} (npm package node@${version})`, async () => {
      const dir = join(cache, `node-${version}`);
      const bin = join(dir, 'node_modules', '.bin', 'node');
      if (!existsSync(bin)) {
        mkdirSync(dir, { recursive: true });
        await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', '--prefix', dir, `node@${version}`]);
      }
      nodes[version] = bin;
      return (await run(bin, ['-v'])).trim();
    }),
  ),
]);
const [cjsInstalled, jest29Installed, esmInstalled] = installs;

// 3. On this machine's Node.
const node = process.execPath;
if (cjsInstalled) {
  const built = await scenario('CommonJS app: tsc, module commonjs, moduleResolution node, skipLibCheck off', async () => {
    await run(node, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { cwd: cjsApp });
  });
  if (built) {
    await scenario(`CommonJS app on memory (Node ${process.versions.node})`, () => onMemory(node, cjsApp, 'dist/main.js'));
    await scenario('CommonJS app on NATS: two processes, published in one, handled in the other', () => onNats(node, cjsApp, 'dist/main.js'));
  }
  await scenario('CommonJS app: its spec under Jest 30, nest new ts-jest config', () => jest(node, cjsApp));
  await scenario('CommonJS app: tsc, module nodenext (as recent nest new 11 generates it); run on memory', async () => {
    await run(node, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.nodenext.json'], { cwd: cjsApp });
    await onMemory(node, cjsApp, 'dist-nodenext/main.js');
  });
  await scenario('declarations, skipLibCheck off, nodenext: required (dist/cjs) and imported (dist/esm)', async () => {
    cpSync(join(here, 'typecheck'), join(cjsApp, 'typecheck'), { recursive: true });
    await run(node, ['node_modules/typescript/bin/tsc', '-p', 'typecheck'], { cwd: cjsApp });
  });
  await scenario('ESM app on Nest 11', () => script(node, cjsApp, 'esm-smoke.mjs', '11'));
  await scenario('ESM and CommonJS builds in one process, Nest 11', () => script(node, cjsApp, 'dual-instance.mjs'));
}
if (jest29Installed) await scenario('CommonJS app: its spec under Jest 29, nest new ts-jest config', () => jest(node, jest29App));
if (esmInstalled) {
  await scenario('ESM app on Nest 12', () => script(node, esmApp, 'esm-smoke.mjs', '12'));
  await scenario('ESM and CommonJS builds in one process, Nest 12', () => script(node, esmApp, 'dual-instance.mjs'));
}

// 4. The CommonJS app (built above) on the other Node versions.
if (cjsInstalled && existsSync(join(cjsApp, 'dist', 'main.js'))) {
  for (const [version, bin] of Object.entries(nodes)) {
    await scenario(`Node ${version}: CommonJS app on memory and on NATS, ESM app, both builds in one process (Nest 11)`, async () => {
      await onMemory(bin, cjsApp, 'dist/main.js');
      await onNats(bin, cjsApp, 'dist/main.js');
      await script(bin, cjsApp, 'esm-smoke.mjs', '11');
      await script(bin, cjsApp, 'dual-instance.mjs');
    });
  }
}

const failed = results.filter((result) => !result.ok).length;
console.log(`\n${results.length - failed} passed, ${failed} failed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
process.exit(failed ? 1 : 0);
