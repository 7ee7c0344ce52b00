// Checks of the Dockerfile without a Docker engine.
//
// lint(): dockerfile-utils' validator (syntax, instructions, flags) plus the hadolint rules we
// hold ourselves to (hadolint is not packaged for Debian 12), by their hadolint ids:
//   DL3006/DL3007  every base image has an explicit tag or digest, never latest; ours: a point
//                  release (12.11) or a digest, not a moving tag (12, bookworm)
//   DL3002         the last USER is not root; ours: numeric uid:gid (runAsNonRoot can verify it)
//   DL3020         COPY, not ADD (no remote URLs, no implicit unpacking)
//   DL3014/DL3015  apt-get install -y --no-install-recommends
//   DL3009         the apt lists are deleted in the same RUN
//   DL3005/DL3027  no apt-get upgrade/dist-upgrade, no `apt`
//   DL3004         no sudo
//   DL3000         WORKDIR is absolute
//   DL4006         SHELL with -o pipefail before any RUN with a pipe
//   DL3025         ENTRYPOINT and CMD in JSON (exec) form
//   DL4003/DL4004  at most one CMD and one ENTRYPOINT per stage
//   DL3022         COPY --from names an earlier stage
//   DL4000         no MAINTAINER
// DL3008 (pin apt package versions) is deliberately not applied: Debian stable only takes
// security and point-release fixes, and the runtime stage must install the versions the build
// stage linked against, which both get from the same archive at build time.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { DockerfileParser } from "dockerfile-ast";
import { validate } from "dockerfile-utils";

// Stages: [{ name, image, instructions: [{ keyword, args, line }] }]
export function parse(text) {
  const df = DockerfileParser.parse(text);
  const lines = text.split("\n");
  const argDefaults = new Map();
  const stages = [];
  for (const ins of df.getInstructions()) {
    const keyword = ins.getKeyword();
    // The instruction's own text (flags such as --from included), without the keyword.
    const range = ins.getRange();
    const source = lines.slice(range.start.line, range.end.line + 1)
      .filter((l, i) => i === 0 || !/^\s*#/.test(l)).join("\n");
    const args = source.replace(/^\s*\S+\s*/, "");
    const line = range.start.line + 1;
    if (keyword === "ARG" && stages.length === 0) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(args.trim());
      if (m) argDefaults.set(m[1], m[2].replace(/^"|"$/g, ""));
      continue;
    }
    if (keyword === "FROM") {
      const parts = args.trim().split(/\s+/).filter((p) => !p.startsWith("--"));
      const image = parts[0].replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, n) => argDefaults.get(n) ?? "");
      const asIdx = parts.findIndex((p) => p.toUpperCase() === "AS");
      stages.push({ name: asIdx >= 0 ? parts[asIdx + 1] : null, image, instructions: [], line });
      continue;
    }
    if (!stages.length) continue;
    stages.at(-1).instructions.push({ keyword, args: args.replace(/\\\n/g, " "), line });
  }
  return stages;
}

export function lint(text) {
  const problems = [];
  for (const d of validate(text)) {
    problems.push(`line ${d.range.start.line + 1}: dockerfile-utils: ${d.message}`);
  }
  const stages = parse(text);
  if (!stages.length) return [...problems, "no FROM"];
  const seen = [];
  for (const st of stages) {
    const at = `stage ${st.name ?? "(unnamed)"} (line ${st.line})`;
    const img = st.image;
    if (!seen.includes(img)) {
      const digest = /@sha256:[0-9a-f]{64}$/.test(img);
      const tag = /:([^/:@]+)$/.exec(img)?.[1];
      if (!digest && !tag) problems.push(`${at}: DL3006 base image ${img} has no tag`);
      else if (!digest && tag === "latest") problems.push(`${at}: DL3007 base image ${img} uses latest`);
      else if (!digest && !/^\d+\.\d+(-slim)?$|^[a-z]+-\d{8}(-slim)?$/.test(tag)) {
        problems.push(`${at}: base image ${img} is not pinned to a point release or a digest`);
      }
    }
    seen.push(st.name);
    let shellPipefail = false;
    let workdir = null;
    const counts = { CMD: 0, ENTRYPOINT: 0 };
    for (const ins of st.instructions) {
      const where = `line ${ins.line}`;
      const a = ins.args;
      switch (ins.keyword) {
        case "SHELL":
          shellPipefail = /pipefail/.test(a);
          break;
        case "ADD":
          problems.push(`${where}: DL3020 use COPY instead of ADD`);
          break;
        case "MAINTAINER":
          problems.push(`${where}: DL4000 MAINTAINER is deprecated`);
          break;
        case "WORKDIR":
          if (!a.trim().startsWith("/")) problems.push(`${where}: DL3000 WORKDIR must be absolute`);
          workdir = a.trim();
          break;
        case "CMD":
        case "ENTRYPOINT":
          counts[ins.keyword]++;
          if (!a.trim().startsWith("[")) problems.push(`${where}: DL3025 ${ins.keyword} must use the JSON form`);
          break;
        case "COPY": {
          const from = /--from=(\S+)/.exec(a)?.[1];
          if (from && !seen.slice(0, -1).includes(from)) problems.push(`${where}: DL3022 COPY --from=${from} is not an earlier stage`);
          const dest = a.trim().split(/\s+/).at(-1);
          if (!dest.startsWith("/") && !workdir) problems.push(`${where}: DL3045 COPY to a relative path without WORKDIR`);
          break;
        }
        case "RUN": {
          if (/\|/.test(a.replace(/\|\|/g, "")) && !shellPipefail) problems.push(`${where}: DL4006 set SHELL with -o pipefail before piping`);
          if (/\bsudo\b/.test(a)) problems.push(`${where}: DL3004 do not use sudo`);
          if (/(^|[;&|]\s*)apt\s/.test(a)) problems.push(`${where}: DL3027 use apt-get, not apt`);
          if (/apt-get\s+(-\S+\s+)*(upgrade|dist-upgrade)\b/.test(a)) problems.push(`${where}: DL3005 no apt-get upgrade`);
          for (const cmd of a.split(/&&|;/)) {
            if (!/apt-get\s+(\S+\s+)*install\b/.test(cmd)) continue;
            if (!/(\s-y\b|\s-[a-z]*y|--yes|--assume-yes)/.test(cmd)) problems.push(`${where}: DL3014 apt-get install without -y`);
            if (!/--no-install-recommends/.test(cmd)) problems.push(`${where}: DL3015 apt-get install without --no-install-recommends`);
          }
          if (/apt-get\s+(\S+\s+)*install\b/.test(a) && !/rm -rf \/var\/lib\/apt\/lists\/\*/.test(a)) {
            problems.push(`${where}: DL3009 delete /var/lib/apt/lists/* in the same RUN`);
          }
          break;
        }
        default:
      }
    }
    if (counts.CMD > 1) problems.push(`${at}: DL4003 more than one CMD`);
    if (counts.ENTRYPOINT > 1) problems.push(`${at}: DL4004 more than one ENTRYPOINT`);
  }
  const final = stages.at(-1);
  const users = final.instructions.filter((i) => i.keyword === "USER").map((i) => i.args.trim());
  const user = users.at(-1);
  if (!user) problems.push("final stage: DL3002 no USER (runs as root)");
  else if (/^(root|0)(:|$)/.test(user)) problems.push(`final stage: DL3002 USER ${user} is root`);
  else if (!/^[1-9]\d*:[1-9]\d*$/.test(user)) problems.push(`final stage: USER ${user} is not a numeric non-root uid:gid`);
  return problems;
}

// The packages the final stage installs with apt-get install.
export function runtimePackages(text) {
  const final = parse(text).at(-1);
  const pkgs = [];
  for (const ins of final.instructions.filter((i) => i.keyword === "RUN")) {
    for (const cmd of ins.args.split(/&&|;/)) {
      const m = /apt-get\s+(?:\S+\s+)*?install\s+(.*)$/s.exec(cmd);
      if (!m) continue;
      for (const tok of m[1].trim().split(/\s+/)) if (tok && !tok.startsWith("-")) pkgs.push(tok);
    }
  }
  return pkgs;
}

// The build stage's apt-get install packages.
export function buildPackages(text) {
  const first = parse(text)[0];
  return runtimePackages(`FROM x\n${first.instructions.filter((i) => i.keyword === "RUN").map((i) => `RUN ${i.args}`).join("\n")}\n`);
}

// Debian packages owning the shared libraries `ldd binary` resolves.
export function lddPackages(binary) {
  const out = execFileSync("ldd", [binary], { encoding: "utf8" });
  const libs = [...out.matchAll(/=>\s+(\/\S+)/g)].map((m) => m[1]);
  const interp = /^\s*(\/\S*ld-linux\S*)/m.exec(out);
  if (interp) libs.push(interp[1]);
  if (/not found/.test(out)) throw new Error(`${binary}: unresolved libraries:\n${out}`);
  // One dpkg -S for every spelling of every path (usr-merge: dpkg knows either /lib/... or
  // /usr/lib/...; the soname link or its target): "pkg1:amd64, pkg2:amd64: /path" lines.
  const spellings = (p) => [p, p.startsWith("/usr/") ? p.slice(4) : `/usr${p}`];
  const candidates = new Map(libs.map((lib) => [lib, [...spellings(lib), ...spellings(fs.realpathSync(lib))]]));
  let out2 = "";
  try {
    out2 = execFileSync("dpkg", ["-S", ...new Set([...candidates.values()].flat())], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch (e) {
    out2 = e.stdout ?? "";  // exit 1 when some spellings are unknown
  }
  const owners = new Map();
  for (const line of out2.split("\n")) {
    if (!line || line.startsWith("diversion")) continue;
    const cut = line.lastIndexOf(": ");
    owners.set(line.slice(cut + 2), line.slice(0, cut).split(",").map((p) => p.trim().replace(/:[a-z0-9]+$/, "")));
  }
  const pkgs = new Set();
  for (const [lib, paths] of candidates) {
    const hit = paths.find((p) => owners.has(p));
    if (!hit) throw new Error(`no Debian package owns ${lib}`);
    for (const p of owners.get(hit)) pkgs.add(p);
  }
  return pkgs;
}

export function packageList(file) {
  return new Set(fs.readFileSync(file, "utf8").split("\n").map((l) => l.replace(/#.*/, "").trim()).filter(Boolean));
}

// WMTY_PACKAGES of scripts/deps.sh.
export function depsShPackages(repoRoot) {
  const text = fs.readFileSync(path.join(repoRoot, "scripts/deps.sh"), "utf8");
  // WMTY_PACKAGES, and WMTY_NODE_PACKAGES (Node.js: npm ci of the bedside app's fhirclient).
  const body = (/WMTY_PACKAGES=\(([\s\S]*?)\n\)/.exec(text)?.[1] ?? "") + " " +
    (/WMTY_NODE_PACKAGES=\(([^)]*)\)/.exec(text)?.[1] ?? "");
  return new Set(body.split("\n").map((l) => l.replace(/#.*/, "")).join(" ").split(/\s+/).filter(Boolean));
}
