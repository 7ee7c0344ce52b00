// Rendering and checking the Kubernetes manifests in k8s/.
//
// render(): `kubectl kustomize` of a copy of k8s/ in which the overlays' git-ignored secret files
// (secrets/) are filled with throwaway values, so every overlay renders offline.
// schemaErrors(): each object against the Kubernetes OpenAPI schema (kubernetes-models, and
// @kubernetes-models/prometheus-operator for the monitoring CRDs).
// policyViolations(): the properties issue 8 asks for (docs/operations.md "Kubernetes").
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const k8sDir = path.join(repoRoot, "k8s");

const PLACEHOLDER_SECRETS = {
  "tls.crt": "-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----\n",
  "tls.key": "-----BEGIN PRIVATE KEY-----\nTEST\n-----END PRIVATE KEY-----\n",
  "hs256.secret": "test-only-secret-test-only-secret-0123456789\n",
  "jwks.json": '{"keys":[]}\n',
};

let tree = null;
// A copy of k8s/ with placeholder secret files; made once per process.
export function renderTree() {
  if (tree) return tree;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wmty-k8s-"));
  fs.cpSync(k8sDir, path.join(dir, "k8s"), { recursive: true });
  for (const overlay of fs.readdirSync(path.join(dir, "k8s/overlays"))) {
    const secrets = path.join(dir, "k8s/overlays", overlay, "secrets");
    fs.mkdirSync(secrets, { recursive: true });
    for (const [name, content] of Object.entries(PLACEHOLDER_SECRETS)) {
      fs.writeFileSync(path.join(secrets, name), content);
    }
  }
  process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  tree = path.join(dir, "k8s");
  return tree;
}

export function kubectl() {
  try {
    execFileSync("kubectl", ["version", "--client"], { stdio: "pipe" });
  } catch {
    throw new Error(
      "kubectl not found: the deploy checks render k8s/ with `kubectl kustomize` (kubectl >= 1.27, kustomize v5)");
  }
  return "kubectl";
}

// The objects `kubectl kustomize k8s/<rel>` renders.
export function render(rel) {
  const out = execFileSync(kubectl(), ["kustomize", path.join(renderTree(), rel)], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 64 << 20,
  });
  return parseYaml(out);
}

export function parseYaml(text) {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length) throw new Error(d.errors.map((e) => e.message).join("; "));
      return d.toJS();
    })
    .filter((o) => o != null);
}

export function readYamlFile(rel) {
  return parseYaml(fs.readFileSync(path.join(repoRoot, rel), "utf8"));
}

// ---------------------------------------------------------------- schema

const modelModules = new Map();
async function modelsFor(apiVersion) {
  if (!modelModules.has(apiVersion)) {
    const spec = apiVersion === "v1" ? "kubernetes-models/v1"
      : apiVersion.startsWith("monitoring.coreos.com/")
        ? `@kubernetes-models/prometheus-operator/${apiVersion}`
        : `kubernetes-models/${apiVersion}`;
    modelModules.set(apiVersion, await import(spec).catch(() => null));
  }
  return modelModules.get(apiVersion);
}

// Errors of one object against its schema ([] when valid); an unknown kind is an error too.
export async function schemaErrors(obj) {
  const where = `${obj?.kind}/${obj?.metadata?.name}`;
  if (!obj?.apiVersion || !obj?.kind) return [`${where}: no apiVersion/kind`];
  const mod = await modelsFor(obj.apiVersion);
  const Model = mod?.[obj.kind];
  if (typeof Model !== "function") return [`${where}: no schema for ${obj.apiVersion} ${obj.kind}`];
  const copy = structuredClone(obj);
  // kustomize wraps long base64 values at 76 columns; the API server's decoder (Go's
  // encoding/base64) skips \r and \n, the schema's "byte" pattern does not.
  if (copy.kind === "Secret" && copy.data) {
    for (const k of Object.keys(copy.data)) copy.data[k] = String(copy.data[k]).replace(/[\r\n]/g, "");
  }
  try {
    new Model(copy).validate();
    return [];
  } catch (e) {
    return [`${where}: ${e.message}`];
  }
}

// ---------------------------------------------------------------- wmtyd flags

// "--name=value" lines of a flag file (comments and blank lines skipped), in order.
export function parseFlagFile(text) {
  const flags = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^--([A-Za-z0-9_]+)(?:=(.*))?$/.exec(line);
    flags.push(m ? { name: m[1], value: m[2] ?? "true", line } : { name: null, value: null, line });
  }
  return flags;
}

// The flag names `wmtyd --helpfull` lists.
export function wmtydFlagNames(wmtyd) {
  let out;
  try {
    out = execFileSync(wmtyd, ["--helpfull"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    out = `${e.stdout ?? ""}${e.stderr ?? ""}`;  // absl exits 1 after --helpfull
  }
  const names = new Set();
  for (const m of out.matchAll(/^\s+--([a-z0-9_]+) \(/gm)) names.add(m[1]);
  if (names.size < 10) throw new Error(`could not read the flags of ${wmtyd} --helpfull`);
  return names;
}

// absl durations: "15s", "1m30s", "500ms", "6h".
export function durationSeconds(text) {
  const units = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, ns: 1e-9 };
  let total = 0;
  let rest = String(text);
  if (rest === "0") return 0;
  while (rest.length) {
    const m = /^(\d+(?:\.\d+)?)(h|ms|us|ns|m|s)/.exec(rest);
    if (!m) return NaN;
    total += Number(m[1]) * units[m[2]];
    rest = rest.slice(m[0].length);
  }
  return total;
}

// Kubernetes quantities in bytes ("1Gi", "512Mi", "1G").
export function quantityBytes(q) {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(q));
  if (!m) return NaN;
  const mult = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(m[1]) * (m[2] ? mult[m[2]] : 1);
}

// ---------------------------------------------------------------- policy

function podSpecs(objects) {
  const out = [];
  for (const o of objects) {
    const where = `${o.kind}/${o.metadata?.name}`;
    if (o.kind === "StatefulSet" || o.kind === "Deployment" || o.kind === "Job") {
      out.push({ where, obj: o, spec: o.spec?.template?.spec });
    } else if (o.kind === "CronJob") {
      out.push({ where, obj: o, spec: o.spec?.jobTemplate?.spec?.template?.spec });
    } else if (o.kind === "Pod") {
      out.push({ where, obj: o, spec: o.spec });
    }
  }
  return out;
}

function selects(selector, labels) {
  return Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v) && Object.keys(selector ?? {}).length > 0;
}

function listenPort(value) {
  const m = /:(\d+)$/.exec(value ?? "");
  return m ? Number(m[1]) : null;
}

// Security properties every pod in `objects` must have (also for the ops Job).
export function securityViolations(objects) {
  const v = [];
  for (const { where, spec } of podSpecs(objects)) {
    if (!spec) {
      v.push(`${where}: no pod spec`);
      continue;
    }
    const psc = spec.securityContext ?? {};
    if (psc.runAsNonRoot !== true) v.push(`${where}: pod securityContext.runAsNonRoot is not true`);
    if (!(psc.runAsUser > 0)) v.push(`${where}: pod securityContext.runAsUser is not a non-root uid`);
    if (spec.automountServiceAccountToken !== false) v.push(`${where}: automountServiceAccountToken is not false`);
    for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
      const cw = `${where} container ${c.name}`;
      const sc = c.securityContext ?? {};
      if (sc.allowPrivilegeEscalation !== false) v.push(`${cw}: allowPrivilegeEscalation is not false`);
      if (sc.readOnlyRootFilesystem !== true) v.push(`${cw}: readOnlyRootFilesystem is not true`);
      if (sc.privileged === true) v.push(`${cw}: privileged`);
      if (sc.runAsUser === 0) v.push(`${cw}: runs as uid 0`);
      if (!(sc.capabilities?.drop ?? []).includes("ALL")) v.push(`${cw}: capabilities.drop does not include ALL`);
      if ((sc.capabilities?.add ?? []).length) v.push(`${cw}: adds capabilities`);
      const seccomp = sc.seccompProfile?.type ?? psc.seccompProfile?.type;
      if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost") v.push(`${cw}: no RuntimeDefault seccomp profile`);
      if (!c.resources?.requests?.memory || !c.resources?.limits?.memory) v.push(`${cw}: no memory request/limit`);
      if (/:latest$|^[^:@]+$/.test(c.image ?? "") && !/^wmty$/.test(c.image)) v.push(`${cw}: image ${c.image} has no tag`);
    }
  }
  return v;
}

// Everything issue 8 asks of a rendered overlay. `flagNames`: the flags wmtyd knows.
export function policyViolations(objects, { flagNames }) {
  const v = [...securityViolations(objects)];
  const byKind = (k) => objects.filter((o) => o.kind === k);
  const find = (k, name) => objects.find((o) => o.kind === k && o.metadata?.name === name);

  for (const o of objects) {
    if (o.kind !== "Namespace" && !o.metadata?.namespace) v.push(`${o.kind}/${o.metadata?.name}: no namespace`);
  }
  for (const ns of byKind("Namespace")) {
    if (ns.metadata?.labels?.["pod-security.kubernetes.io/enforce"] !== "restricted") {
      v.push(`Namespace/${ns.metadata.name}: Pod Security "restricted" is not enforced`);
    }
  }

  const sets = byKind("StatefulSet");
  if (sets.length !== 1) {
    v.push(`expected exactly one StatefulSet, found ${sets.length}`);
    return v;
  }
  const sts = sets[0];
  const name = sts.metadata.name;
  const pod = sts.spec?.template?.spec ?? {};
  const podLabels = sts.spec?.template?.metadata?.labels ?? {};
  if (sts.spec?.replicas !== 1) {
    v.push(`StatefulSet/${name}: replicas must be 1 (each pod is its own database; docs/scaling.md)`);
  }
  if (!selects(sts.spec?.selector?.matchLabels, podLabels)) v.push(`StatefulSet/${name}: selector does not match its pods`);
  const headless = find("Service", sts.spec?.serviceName);
  if (!headless || headless.spec?.clusterIP !== "None") {
    v.push(`StatefulSet/${name}: serviceName ${sts.spec?.serviceName} is not a headless Service`);
  }

  const container = (pod.containers ?? []).find((c) => c.name === "wmtyd");
  if (!container) {
    v.push(`StatefulSet/${name}: no container wmtyd`);
    return v;
  }
  const ports = new Map((container.ports ?? []).map((p) => [p.name, p.containerPort]));

  // Flags: the flag file from the ConfigMap, every flag real, the ports and paths consistent.
  const flagfileArg = (container.args ?? []).find((a) => a.startsWith("--flagfile="));
  const flagfile = flagfileArg?.slice("--flagfile=".length);
  const mountOf = (file) => (container.volumeMounts ?? [])
    .filter((m) => file && (file === m.mountPath || file.startsWith(`${m.mountPath}/`)))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  const volume = (n) => (pod.volumes ?? []).find((x) => x.name === n);
  let flags = [];
  const flagMount = mountOf(flagfile);
  const flagCm = flagMount && find("ConfigMap", volume(flagMount.name)?.configMap?.name);
  if (!flagCm) {
    v.push(`StatefulSet/${name}: --flagfile does not point into a mounted ConfigMap`);
  } else {
    const key = path.relative(flagMount.mountPath, flagfile);
    const text = flagCm.data?.[key];
    if (text == null) v.push(`ConfigMap/${flagCm.metadata.name}: no key ${key}`);
    else flags = parseFlagFile(text);
  }
  for (const a of container.args ?? []) {
    const m = /^--([a-z0-9_]+)/.exec(a);
    if (m && !flagNames.has(m[1])) v.push(`container args: --${m[1]} is not a wmtyd flag`);
  }
  const flag = new Map();
  for (const f of flags) {
    if (!f.name) v.push(`flag file: malformed line "${f.line}"`);
    else if (!flagNames.has(f.name)) v.push(`flag file: --${f.name} is not a wmtyd flag (wmtyd --helpfull)`);
    else flag.set(f.name, f.value);
  }
  const expectPort = (flagName, portName) => {
    const p = listenPort(flag.get(flagName));
    if (p == null) v.push(`flag file: --${flagName} has no port`);
    else if (ports.get(portName) !== p) v.push(`--${flagName} port ${p} is not container port ${portName} (${ports.get(portName)})`);
    if (flag.get(flagName) && !/^(0\.0\.0\.0|\[::\]):/.test(flag.get(flagName))) {
      v.push(`--${flagName}=${flag.get(flagName)} does not listen on the pod's addresses`);
    }
  };
  expectPort("grpc_listen", "grpc");
  expectPort("http_listen", "fhir");
  expectPort("metrics_listen", "metrics");
  expectPort("health_listen", "health");

  // Files the flags name must be in mounted volumes, and Secret keys must exist.
  for (const [fname, value] of flag) {
    if (!/_file$/.test(fname)) continue;
    const m = mountOf(value);
    const vol = m && volume(m.name);
    if (!vol) {
      v.push(`--${fname}=${value} is not in a mounted volume`);
      continue;
    }
    const key = path.relative(m.mountPath, value);
    const src = vol.secret ? find("Secret", vol.secret.secretName) : vol.configMap ? find("ConfigMap", vol.configMap.name) : null;
    if (src && !(key in (src.data ?? {})) && !(key in (src.stringData ?? {}))) {
      v.push(`--${fname}: ${src.kind}/${src.metadata.name} has no key ${key}`);
    }
    if (!src && (vol.secret || vol.configMap)) v.push(`--${fname}: volume ${m.name} refers to an object the overlay does not create`);
  }

  // Storage: a PVC per pod for the data and one for the backups, on different volumes.
  const templates = new Map((sts.spec?.volumeClaimTemplates ?? []).map((t) => [t.metadata?.name, t]));
  for (const [flagName, claim] of [["data_dir", "data"], ["backup_dir", "backups"]]) {
    const t = templates.get(claim);
    if (!t) {
      v.push(`StatefulSet/${name}: no volumeClaimTemplate ${claim}`);
      continue;
    }
    if (!t.spec?.resources?.requests?.storage) v.push(`volumeClaimTemplate ${claim}: no storage request`);
    const m = mountOf(flag.get(flagName));
    if (!m || m.name !== claim) v.push(`--${flagName}=${flag.get(flagName)} is not on the ${claim} volume claim`);
    if (m && m.readOnly) v.push(`--${flagName} is on a read-only mount`);
  }
  const rw = new Set(["data", "backups", ...(pod.volumes ?? []).filter((x) => x.emptyDir).map((x) => x.name)]);
  for (const m of container.volumeMounts ?? []) {
    if (!rw.has(m.name) && m.readOnly !== true) v.push(`mount ${m.mountPath}: configuration mounts must be read-only`);
  }
  if (!flag.get("backup_interval") || !(durationSeconds(flag.get("backup_interval")) > 0)) {
    v.push("flag file: no scheduled backups (--backup_interval)");
  }
  if (!(Number(flag.get("backup_keep")) > 0)) v.push("flag file: no backup retention (--backup_keep)");
  if (sts.spec?.persistentVolumeClaimRetentionPolicy?.whenDeleted !== "Retain") {
    v.push(`StatefulSet/${name}: PVCs must be retained when the StatefulSet is deleted`);
  }

  // Probes: native gRPC on the health port; "" for startup/readiness, wmty.liveness for liveness.
  const probeWant = { startupProbe: "", readinessProbe: "", livenessProbe: "wmty.liveness" };
  for (const [probe, service] of Object.entries(probeWant)) {
    const p = container[probe];
    if (!p?.grpc) v.push(`${probe}: not a native gRPC probe`);
    else {
      if (p.grpc.port !== ports.get("health")) v.push(`${probe}: port ${p.grpc.port} is not the health port`);
      if ((p.grpc.service ?? "") !== service) v.push(`${probe}: service "${p.grpc.service ?? ""}" is not "${service}"`);
    }
    if (p && (p.exec || p.httpGet || p.tcpSocket)) v.push(`${probe}: more than one handler`);
  }

  // Drain: preStop sleep, then --shutdown_grace, then time to close the database.
  const pre = container.lifecycle?.preStop;
  const sleep = pre?.exec?.command?.[0]?.endsWith("sleep") ? Number(pre.exec.command[1]) : pre?.sleep?.seconds;
  if (!(sleep > 0)) v.push("preStop: no sleep before SIGTERM (endpoint removal must propagate first)");
  const grace = durationSeconds(flag.get("shutdown_grace") ?? "10s");
  const tgps = pod.terminationGracePeriodSeconds ?? 30;
  if (!(tgps >= (sleep || 0) + grace + 5)) {
    v.push(`terminationGracePeriodSeconds ${tgps} < preStop ${sleep}s + --shutdown_grace ${grace}s + 5s`);
  }

  // Memory: the limit must hold what the flags make resident (docs/operations.md):
  // block cache + memtables + summary cache + 64 MiB render cache + ~150 MiB, plus ~160 MiB under overload.
  const cache = Number(flag.get("block_cache_mb") ?? 256);
  const memtable = Number(flag.get("memtable_mb") ?? 128);
  const summaries = Number(flag.get("summary_cache_mb") ?? 64);
  const needMiB = cache + memtable + summaries + 64 + 150 + 160;
  const limit = quantityBytes(container.resources?.limits?.memory) / 2 ** 20;
  if (!(limit >= needMiB)) v.push(`memory limit ${limit} MiB < ${needMiB} MiB the flags need`);
  if (limit > 4 * needMiB) v.push(`memory limit ${limit} MiB is far above the ${needMiB} MiB the flags need`);

  // Services: one for gRPC, one for HTTP, the headless one; all select the pods, ports exist.
  const services = byKind("Service").filter((s) => selects(s.spec?.selector, podLabels));
  const servesPort = (s, portName) => (s.spec?.ports ?? []).some((p) => p.targetPort === portName || p.targetPort === ports.get(portName));
  if (!services.some((s) => s.spec?.clusterIP !== "None" && servesPort(s, "grpc"))) v.push("no Service for gRPC");
  if (!services.some((s) => s.spec?.clusterIP !== "None" && servesPort(s, "fhir"))) v.push("no Service for HTTP (FHIR)");
  for (const s of byKind("Service")) {
    if (!selects(s.spec?.selector, podLabels)) v.push(`Service/${s.metadata.name}: selects no wmty pod`);
    for (const p of s.spec?.ports ?? []) {
      const ok = typeof p.targetPort === "string" ? ports.has(p.targetPort) : [...ports.values()].includes(p.targetPort ?? p.port);
      if (!ok) v.push(`Service/${s.metadata.name}: targetPort ${p.targetPort} is not a container port`);
      if (p.targetPort === "health" || p.targetPort === ports.get("health")) v.push(`Service/${s.metadata.name}: exposes the health port`);
    }
  }

  // PodDisruptionBudget for the server pods.
  if (!byKind("PodDisruptionBudget").some((p) => selects(p.spec?.selector?.matchLabels, podLabels))) {
    v.push("no PodDisruptionBudget for the wmty pods");
  }

  // NetworkPolicy: ingress ports == the container ports (the health port is the kubelet's, which
  // NetworkPolicy cannot block), no egress.
  const policies = byKind("NetworkPolicy").filter((p) => selects(p.spec?.podSelector?.matchLabels, podLabels));
  if (policies.length !== 1) v.push(`expected one NetworkPolicy for the wmty pods, found ${policies.length}`);
  for (const np of policies) {
    const types = np.spec?.policyTypes ?? [];
    if (!types.includes("Ingress") || !types.includes("Egress")) v.push(`NetworkPolicy/${np.metadata.name}: policyTypes must be Ingress and Egress`);
    if ((np.spec?.egress ?? []).length) v.push(`NetworkPolicy/${np.metadata.name}: allows egress (wmtyd opens no connections)`);
    const open = new Set();
    for (const rule of np.spec?.ingress ?? []) {
      if (!rule.ports?.length) v.push(`NetworkPolicy/${np.metadata.name}: an ingress rule without ports opens every port`);
      for (const p of rule.ports ?? []) open.add(typeof p.port === "string" ? ports.get(p.port) : p.port);
    }
    const want = new Set([...ports].filter(([n]) => n !== "health").map(([, p]) => p));
    const fmt = (s) => [...s].sort((a, b) => a - b).join(",");
    if (fmt(open) !== fmt(want)) v.push(`NetworkPolicy/${np.metadata.name}: opens ports ${fmt(open)}, container ports are ${fmt(want)}`);
  }
  for (const { where, obj } of podSpecs(objects)) {
    if (obj === sts) continue;
    const labels = obj.kind === "CronJob" ? obj.spec?.jobTemplate?.spec?.template?.metadata?.labels : obj.spec?.template?.metadata?.labels;
    if (!byKind("NetworkPolicy").some((p) => selects(p.spec?.podSelector?.matchLabels, labels))) {
      v.push(`${where}: no NetworkPolicy selects its pods`);
    }
  }

  // Backups: the restore drill reads the backup claim of pod 0, read-only, with the same image.
  const drills = byKind("CronJob");
  if (!drills.length) v.push("no CronJob (backup restore drill)");
  for (const cj of drills) {
    const spec = cj.spec?.jobTemplate?.spec?.template?.spec ?? {};
    const claim = (spec.volumes ?? []).find((x) => x.persistentVolumeClaim)?.persistentVolumeClaim;
    if (claim?.claimName !== `backups-${name}-0`) v.push(`CronJob/${cj.metadata.name}: does not mount backups-${name}-0`);
    if (claim && claim.readOnly !== true) v.push(`CronJob/${cj.metadata.name}: mounts the backups read-write`);
    if (cj.spec?.concurrencyPolicy !== "Forbid") v.push(`CronJob/${cj.metadata.name}: concurrencyPolicy is not Forbid`);
    if ((spec.containers ?? []).some((c) => c.image !== container.image)) v.push(`CronJob/${cj.metadata.name}: image differs from the StatefulSet's`);
  }
  return v;
}
