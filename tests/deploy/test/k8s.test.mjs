// k8s/: every overlay renders with `kubectl kustomize`, every object is valid against the
// Kubernetes OpenAPI schema, and the properties of issue 8 hold (lib/k8s.mjs policyViolations).
// The negative cases prove the checks can fail. WMTYD: the built wmtyd (ctest passes it), whose
// `--helpfull` is the list of real flags.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { policyViolations, readYamlFile, render, repoRoot, schemaErrors, securityViolations, wmtydFlagNames } from "../lib/k8s.mjs";

const wmtyd = process.env.WMTYD ?? path.join(repoRoot, "build/services/server/wmtyd");
const flagNames = wmtydFlagNames(wmtyd);
const OVERLAYS = ["overlays/dev", "overlays/prod"];

async function allSchemaErrors(objects) {
  return (await Promise.all(objects.map(schemaErrors))).flat();
}

for (const overlay of OVERLAYS) {
  test(`${overlay} renders and every object matches the Kubernetes schema`, async () => {
    const objects = render(overlay);
    const kinds = objects.map((o) => o.kind).sort();
    for (const k of ["ConfigMap", "CronJob", "Namespace", "NetworkPolicy", "PodDisruptionBudget", "Secret", "Service", "StatefulSet"]) {
      assert.ok(kinds.includes(k), `${overlay} renders no ${k}`);
    }
    assert.deepEqual(await allSchemaErrors(objects), []);
  });

  test(`${overlay} has the properties issue 8 asks for`, () => {
    assert.deepEqual(policyViolations(render(overlay), { flagNames }), []);
  });
}

test("the base renders and k8s/ops/restore-job.yaml is valid and locked down", async () => {
  assert.deepEqual(await allSchemaErrors(render("base")), []);
  const job = readYamlFile("k8s/ops/restore-job.yaml");
  assert.deepEqual(await allSchemaErrors(job), []);
  assert.deepEqual(securityViolations(job.map((o) => ({ ...o, metadata: { ...o.metadata, namespace: "x" } }))), []);
});

test("the overlays differ where they should: dev drains freely, prod waits for an operator", () => {
  const pdb = (o) => render(o).find((x) => x.kind === "PodDisruptionBudget").spec;
  assert.equal(pdb("overlays/prod").minAvailable, 1);
  assert.equal(pdb("overlays/dev").maxUnavailable, 1);
  assert.equal(pdb("overlays/dev").minAvailable, undefined);
  const sts = render("overlays/prod").find((x) => x.kind === "StatefulSet");
  const res = sts.spec.template.spec.containers[0].resources;
  assert.deepEqual(res.requests.memory, res.limits.memory, "prod: Guaranteed QoS (requests == limits)");
  assert.deepEqual(res.requests.cpu, res.limits.cpu, "prod: Guaranteed QoS (requests == limits)");
});

// ---------------------------------------------------------------- the checks can fail

function mutated(fn) {
  const objects = structuredClone(render("overlays/prod"));
  fn(objects, objects.find((o) => o.kind === "StatefulSet"));
  return policyViolations(objects, { flagNames });
}
const wmtydContainer = (sts) => sts.spec.template.spec.containers.find((c) => c.name === "wmtyd");
const flagsConfigMap = (objects) => objects.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("wmty-flags"));

const NEGATIVE = {
  "a writable root filesystem": [(o, s) => { wmtydContainer(s).securityContext.readOnlyRootFilesystem = false; }, /readOnlyRootFilesystem/],
  "privilege escalation": [(o, s) => { delete wmtydContainer(s).securityContext.allowPrivilegeEscalation; }, /allowPrivilegeEscalation/],
  "capabilities kept": [(o, s) => { wmtydContainer(s).securityContext.capabilities.drop = ["NET_RAW"]; }, /capabilities.drop/],
  "root user": [(o, s) => { s.spec.template.spec.securityContext.runAsNonRoot = false; }, /runAsNonRoot/],
  "a TCP liveness probe": [(o, s) => { wmtydContainer(s).livenessProbe = { tcpSocket: { port: 50051 } }; }, /livenessProbe: not a native gRPC probe/],
  "readiness on the liveness service": [(o, s) => { wmtydContainer(s).readinessProbe.grpc.service = "wmty.liveness"; }, /readinessProbe: service/],
  "a probe on the TLS port": [(o, s) => { wmtydContainer(s).startupProbe.grpc.port = 50051; }, /startupProbe: port/],
  "a grace period shorter than the drain": [(o, s) => { s.spec.template.spec.terminationGracePeriodSeconds = 10; }, /terminationGracePeriodSeconds/],
  "no preStop": [(o, s) => { delete wmtydContainer(s).lifecycle; }, /preStop/],
  "three replicas": [(o, s) => { s.spec.replicas = 3; }, /replicas must be 1/],
  "no data claim": [(o, s) => { s.spec.volumeClaimTemplates = s.spec.volumeClaimTemplates.filter((t) => t.metadata.name !== "data"); }, /no volumeClaimTemplate data/],
  "an extra open port": [(o) => { o.find((x) => x.kind === "NetworkPolicy" && x.metadata.name === "wmty").spec.ingress[0].ports.push({ protocol: "TCP", port: 22 }); }, /opens ports/],
  "egress allowed": [(o) => { o.find((x) => x.kind === "NetworkPolicy" && x.metadata.name === "wmty").spec.egress = [{}]; }, /allows egress/],
  "no PodDisruptionBudget": [(o) => { o.splice(o.findIndex((x) => x.kind === "PodDisruptionBudget"), 1); }, /no PodDisruptionBudget/],
  "an unknown flag": [(o) => { flagsConfigMap(o).data["wmtyd.flags"] += "\n--no_such_flag=1\n"; }, /--no_such_flag is not a wmtyd flag/],
  "a listen port that is not the container port": [(o) => { flagsConfigMap(o).data["wmtyd.flags"] += "\n--grpc_listen=0.0.0.0:50052\n"; }, /--grpc_listen port 50052/],
  "a key file missing from its Secret": [(o) => { flagsConfigMap(o).data["wmtyd.flags"] += "\n--tls_client_ca_file=/etc/wmty/tls/ca.crt\n"; }, /has no key ca.crt/],
  "a memory limit below what the caches need": [(o, s) => { wmtydContainer(s).resources.limits.memory = "256Mi"; }, /memory limit/],
  "caches grown past the limit": [(o) => { flagsConfigMap(o).data["wmtyd.flags"] += "\n--block_cache_mb=2048\n"; }, /memory limit/],
  "summary cache grown past the limit": [(o) => { flagsConfigMap(o).data["wmtyd.flags"] += "\n--summary_cache_mb=512\n"; }, /memory limit/],
  "the restore drill writing to the backups": [(o) => { o.find((x) => x.kind === "CronJob").spec.jobTemplate.spec.template.spec.volumes[0].persistentVolumeClaim.readOnly = false; }, /read-write/],
  "a Service exposing the health port": [(o) => { o.find((x) => x.kind === "Service").spec.ports.push({ name: "h", port: 8086, targetPort: "health" }); }, /exposes the health port/],
};
for (const [what, [fn, expected]] of Object.entries(NEGATIVE)) {
  test(`rejected: ${what}`, () => {
    const v = mutated(fn);
    assert.ok(v.some((x) => expected.test(x)), `expected a violation matching ${expected}, got ${JSON.stringify(v)}`);
  });
}

test("rejected by the schema: wrong types and missing required fields", async () => {
  const objects = structuredClone(render("overlays/prod"));
  const sts = objects.find((o) => o.kind === "StatefulSet");
  sts.spec.replicas = "one";
  assert.match((await schemaErrors(sts)).join(), /replicas/);
  const sts2 = structuredClone(render("overlays/prod").find((o) => o.kind === "StatefulSet"));
  delete sts2.spec.template.spec.containers[0].name;
  assert.match((await schemaErrors(sts2)).join(), /name/);
  const np = objects.find((o) => o.kind === "NetworkPolicy");
  np.spec.ingress[0].ports[0].port = { bad: true };
  assert.notDeepEqual(await schemaErrors(np), []);
  assert.notDeepEqual(await schemaErrors({ apiVersion: "v1", kind: "NoSuchKind", metadata: { name: "x" } }), []);
});
