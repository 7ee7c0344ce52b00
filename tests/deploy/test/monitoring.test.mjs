// k8s/monitoring: the PrometheusRule and ServiceMonitor match their CRD schemas, the Grafana
// dashboard is well-formed JSON with a data source variable and the panels operators need, and
// every expression (alerts, panels, template variables) names only metrics from the /metrics
// contract (lib/promql.mjs) or the standard kubelet / kube-state-metrics / cAdvisor ones.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { render, repoRoot, schemaErrors } from "../lib/k8s.mjs";
import { metricNames, unknownMetrics } from "../lib/promql.mjs";

const dashboard = JSON.parse(fs.readFileSync(path.join(repoRoot, "k8s/monitoring/grafana-dashboard.json"), "utf8"));
const objects = render("monitoring");
const rule = objects.find((o) => o.kind === "PrometheusRule");

function dashboardExprs() {
  const exprs = [];
  const walk = (panels) => {
    for (const p of panels ?? []) {
      for (const t of p.targets ?? []) exprs.push({ where: `panel "${p.title}"`, expr: t.expr });
      walk(p.panels);
    }
  };
  walk(dashboard.panels);
  for (const v of dashboard.templating.list) {
    if (v.type === "query") exprs.push({ where: `variable ${v.name}`, expr: (v.query.query ?? v.query).replace(/^label_values\((.*),\s*\w+\)$/, "$1") });
  }
  return exprs;
}

test("monitoring objects match their schemas and the dashboard ships as a Grafana sidecar ConfigMap", async () => {
  assert.deepEqual((await Promise.all(objects.map(schemaErrors))).flat(), []);
  const cm = objects.find((o) => o.kind === "ConfigMap");
  assert.equal(cm.metadata.labels.grafana_dashboard, "1");
  assert.deepEqual(JSON.parse(cm.data["grafana-dashboard.json"]), dashboard);
  const sm = objects.find((o) => o.kind === "ServiceMonitor");
  assert.equal(sm.spec.endpoints[0].port, "metrics");
  assert.equal(sm.spec.endpoints[0].path, "/metrics");
});

test("alert rules: only contract metrics, and the alerts the issue names exist", () => {
  const alerts = rule.spec.groups.flatMap((g) => g.rules);
  for (const a of alerts) {
    assert.deepEqual(unknownMetrics(a.expr), [], `alert ${a.alert}`);
    assert.ok(metricNames(a.expr).size > 0, `alert ${a.alert} reads no metric`);
    assert.match(a.labels?.severity ?? "", /^(warning|critical)$/, `alert ${a.alert}`);
    assert.ok(a.annotations?.summary, `alert ${a.alert} has no summary`);
  }
  const uses = (re) => alerts.some((a) => re.test(a.expr));
  assert.ok(uses(/wmty_grpc_requests_total/) && uses(/wmty_http_requests_total\{code=~"5\.\."\}/), "error-rate alerts");
  assert.ok(uses(/histogram_quantile\(0\.99,.*wmty_grpc_request_duration_seconds_bucket/s), "gRPC p99 alert");
  assert.ok(uses(/histogram_quantile\(0\.99,.*wmty_http_request_duration_seconds_bucket/s), "FHIR p99 alert");
  assert.ok(uses(/kubelet_volume_stats_available_bytes/), "disk alert");
  assert.ok(uses(/wmty_backup_last_success_timestamp_seconds/), "backup age alert");
});

test("dashboard: a data source variable, the panels operators need, contract metrics only", () => {
  const ds = dashboard.templating.list.find((v) => v.type === "datasource");
  assert.equal(ds?.query, "prometheus");
  const exprs = dashboardExprs();
  for (const { where, expr } of exprs) assert.deepEqual(unknownMetrics(expr), [], where);
  const all = exprs.map((e) => e.expr).join("\n");
  for (const m of ["wmty_grpc_requests_total", "wmty_grpc_request_duration_seconds_bucket", "wmty_http_requests_total",
    "wmty_http_request_duration_seconds_bucket", "wmty_rocksdb_block_cache_hits_total", "wmty_rocksdb_pending_compaction_bytes",
    "wmty_commit_queue_depth", "wmty_backup_last_success_timestamp_seconds", "kubelet_volume_stats_available_bytes"]) {
    assert.ok(all.includes(m), `no panel shows ${m}`);
  }
  for (const p of dashboard.panels.filter((x) => x.targets)) {
    for (const t of p.targets) assert.equal(t.datasource.uid, "${datasource}", `panel "${p.title}": fixed data source`);
  }
  const ids = dashboard.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
});

test("the metric check can fail", () => {
  assert.deepEqual(unknownMetrics('sum(rate(wmty_grpc_requests_totl{code!="OK"}[5m]))'), ["wmty_grpc_requests_totl"]);
  assert.deepEqual(unknownMetrics("histogram_quantile(0.99, rate(wmty_grpc_request_duration_seconds_bucket[5m]))"), []);
  assert.deepEqual(unknownMetrics("node_filesystem_avail_bytes / 2"), ["node_filesystem_avail_bytes"]);
});
