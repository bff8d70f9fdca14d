#!/usr/bin/env bash
# The package built from this checkout, against the lower major of its peers: Nest 11 and @nestjs/cqrs 11.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$root" && npm run --silent build)
cd "$work"
echo '{ "name": "nest11-smoke", "private": true, "type": "module" }' > package.json
npm install --silent --no-audit --no-fund @nestjs/core@^11 @nestjs/common@^11 @nestjs/cqrs@^11 reflect-metadata rxjs \
  "$(cd "$root" && npm pack --silent --pack-destination "$work")" >/dev/null
cp "$root/test/compat/nest11-smoke.mjs" . && node nest11-smoke.mjs
