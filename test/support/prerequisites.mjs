// What `npm test` needs on the machine besides node_modules, checked before anything runs: as root
// with apt-get it installs what is missing; otherwise it stops with one line naming what to install.
// Plain Node, no dependencies: .ci/run calls it before `npm ci`.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const executable = (path) => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** Whether a directory has an entry for which the check holds (Debian's PostgreSQL lives in /usr/lib/postgresql/<version>). */
const existsIn = (dir, check) => {
  try {
    return readdirSync(dir).some(check);
  } catch {
    return false;
  }
};

/** On PATH, or where Debian installs system binaries (nats-server is in /usr/sbin, often not on a user's PATH). */
const onPath = (command) =>
  [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/local/bin', '/usr/bin']
    .filter(Boolean)
    .some((dir) => executable(join(dir, command)));

/**
 * One line per prerequisite: what it is, why the tests need it, the Debian package that brings it,
 * and how to tell it is there. `variable` names an environment variable that points at it instead.
 */
const prerequisites = [
  { name: 'nats-server', why: 'NATS and JetStream tests', debian: 'nats-server', variable: 'NATS_SERVER_BIN', present: () => onPath('nats-server') },
  { name: 'redis-server', why: 'Redis Streams tests', debian: 'redis-server', variable: 'REDIS_SERVER_BIN', present: () => onPath('redis-server') },
  {
    name: 'PostgreSQL (initdb, pg_ctl)', why: 'outbox tests (they start their own server)', debian: 'postgresql',
    present: () => existsIn('/usr/lib/postgresql', (version) => executable(join('/usr/lib/postgresql', version, 'bin', 'initdb'))),
  },
  { name: 'rabbitmq-server', why: 'RabbitMQ tests (they start nodes of their own)', debian: 'rabbitmq-server', present: () => executable('/usr/lib/rabbitmq/bin/rabbitmq-server') },
  { name: 'openssl', why: 'TLS test certificates', debian: 'openssl', present: () => onPath('openssl') },
  { name: 'Chromium', why: 'the admin page test', debian: 'chromium', variable: 'CHROMIUM_PATH', present: () => executable('/usr/bin/chromium') },
];

/** Which are missing; one pointed at by its variable is checked there, and installing cannot help it. */
function check() {
  const misdirected = [];
  const missing = [];
  for (const p of prerequisites) {
    const given = p.variable && process.env[p.variable];
    if (given) {
      if (!executable(given)) misdirected.push(`${p.variable}=${given} is not an executable (${p.name}, for ${p.why})`);
    } else if (!p.present()) missing.push(p);
  }
  return { misdirected, missing };
}

const stop = (line) => {
  console.error(`npm test: ${line}`);
  process.exit(1);
};

const canInstall = () => process.getuid?.() === 0 && onPath('apt-get');

const listed = (missing) => missing.map((p) => `${p.name} (${p.why})`).join(', ');
const packages = (missing) => missing.map((p) => p.debian).join(' ');
const instead = (missing) => {
  const variables = missing.filter((p) => p.variable).map((p) => p.variable);
  return variables.length ? `, or set ${variables.join(', ')}` : '';
};

let { misdirected, missing } = check();
if (misdirected.length) stop(misdirected.join('; '));
if (missing.length && canInstall()) {
  console.log(`npm test: installing ${listed(missing)}: apt-get install -y ${packages(missing)}`);
  const apt = (...args) => spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status === 0;
  if (!apt('update', '-qq') || !apt('install', '-y', '-qq', ...missing.map((p) => p.debian))) {
    stop(`could not install ${packages(missing)} with apt-get (see above)`);
  }
  ({ missing } = check());
}
if (missing.length) {
  const sudo = process.getuid?.() === 0 ? '' : 'sudo ';
  stop(`missing ${listed(missing)}: install with \`${sudo}apt-get install -y ${packages(missing)}\`${instead(missing)}`);
}
