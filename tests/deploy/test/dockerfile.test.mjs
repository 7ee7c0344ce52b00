// The Dockerfile, without a Docker engine: it lints clean (lib/dockerfile.mjs: dockerfile-utils
// plus hadolint's rules), the build stage installs packages of scripts/deps.sh, and the runtime
// stage installs exactly the Debian packages `ldd` says wmtyd and wmtyctl need, minus what
// debian:12-slim already has (debian-12-slim.packages). WMTYD, WMTYCTL: the built binaries.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { buildPackages, depsShPackages, lddPackages, lint, packageList, parse, runtimePackages } from "../lib/dockerfile.mjs";
import { repoRoot } from "../lib/k8s.mjs";

const dockerfile = fs.readFileSync(path.join(repoRoot, "Dockerfile"), "utf8");
const binaries = [
  process.env.WMTYD ?? path.join(repoRoot, "build/services/server/wmtyd"),
  process.env.WMTYCTL ?? path.join(repoRoot, "build/clients/cpp/wmtyctl"),
];
const slim = packageList(path.join(repoRoot, "tests/deploy/debian-12-slim.packages"));

function expectedRuntime() {
  // Not a library: the trust store wmtyd's https JWKS fetches (--auth_jwks_url) verify against.
  const needed = new Set(["ca-certificates"]);
  for (const b of binaries) for (const p of lddPackages(b)) needed.add(p);
  return [...needed].filter((p) => !slim.has(p)).sort();
}

test("the Dockerfile lints clean", () => {
  assert.deepEqual(lint(dockerfile), []);
});

test("two stages on the same pinned Debian 12 image; non-root; data on volumes", () => {
  const stages = parse(dockerfile);
  assert.equal(stages.length, 2);
  assert.equal(stages[0].image, stages[1].image);
  assert.match(stages[1].image, /^debian:12\.\d+-slim(@sha256:[0-9a-f]{64})?$/);
  const final = stages[1].instructions;
  assert.ok(final.some((i) => i.keyword === "VOLUME" && /\/var\/lib\/wmty"/.test(i.args) && /\/var\/lib\/wmty-backups/.test(i.args)));
  assert.ok(final.some((i) => i.keyword === "COPY" && /--from=build/.test(i.args)));
  assert.equal(final.filter((i) => i.keyword === "USER").at(-1).args.trim(), "10001:10001");
});

test("the build stage installs packages of scripts/deps.sh", () => {
  const deps = depsShPackages(repoRoot);
  assert.ok(deps.size > 10);
  const extra = buildPackages(dockerfile).filter((p) => !deps.has(p));
  assert.deepEqual(extra, [], "build-stage packages that scripts/deps.sh does not install");
});

test("the runtime packages are exactly what ldd needs beyond debian:12-slim", () => {
  const expected = expectedRuntime();
  const actual = [...runtimePackages(dockerfile)].sort();
  const missing = expected.filter((p) => !actual.includes(p));
  const unneeded = actual.filter((p) => !expected.includes(p));
  assert.deepEqual({ missing, unneeded }, { missing: [], unneeded: [] });
  // The libraries the base image provides are there for a reason we can state.
  for (const p of ["libc6", "libstdc++6", "libgcc-s1"]) assert.ok(slim.has(p), `debian:12-slim has ${p}`);
});

test("the checks can fail", () => {
  const bad = `FROM debian:latest AS build
RUN apt-get update && apt-get install curl | tee /log
ADD https://example.org/x.tgz /x
FROM ubuntu
FROM debian:12 AS runtime
MAINTAINER someone
WORKDIR app
COPY --from=nowhere /a /b
RUN sudo apt-get upgrade
CMD wmtyd
USER root
`;
  const problems = lint(bad).join("\n");
  for (const rule of ["DL3007", "DL3006", "not pinned", "DL3014", "DL3015", "DL3009", "DL4006", "DL3020", "DL4000", "DL3000", "DL3022",
    "DL3004", "DL3005", "DL3025", "DL3002"]) {
    assert.match(problems, new RegExp(rule), `lint misses ${rule}`);
  }
  const withoutOne = dockerfile.replace(/\n\s+libssl3 \\\n/, "\n");
  assert.notEqual(withoutOne, dockerfile);
  assert.ok(!runtimePackages(withoutOne).includes("libssl3"));
  assert.ok(expectedRuntime().includes("libssl3"), "ldd of wmtyd needs libssl3, so dropping it is caught");
  const withExtra = dockerfile.replace("libssl3 \\", "libssl3 curl \\");
  assert.ok(runtimePackages(withExtra).includes("curl") && !expectedRuntime().includes("curl"));
});
