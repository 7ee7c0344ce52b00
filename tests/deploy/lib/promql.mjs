// The metric names a PromQL expression reads (a small lexer, enough for our rules and panels):
// strings, label matchers {...}, range/offset durations [..], grouping label lists
// (by/without/on/ignoring/group_left/group_right (...)), Grafana variables ($x, ${x}),
// numbers, keywords and function names are removed; what is left are metric names.
const FUNCTIONS = new Set(`abs absent absent_over_time avg_over_time ceil changes clamp clamp_max clamp_min
count_over_time day_of_month day_of_week days_in_month delta deriv exp floor histogram_quantile holt_winters
hour idelta increase irate label_join label_replace last_over_time ln log10 log2 max_over_time min_over_time
minute month predict_linear quantile_over_time rate resets round scalar sgn sort sort_desc sqrt
stddev_over_time stdvar_over_time sum_over_time time timestamp vector year label_values query_result
sum min max avg group stddev stdvar count count_values bottomk topk quantile`.split(/\s+/));
const KEYWORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"]);

export function metricNames(expr) {
  let s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*/g, " ")
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  const names = new Set();
  for (const m of s.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?/g)) {
    const word = m[0].replace(/\s*\($/, "");
    const call = m[1] !== undefined;
    const before = s.slice(0, m.index);
    if (/[0-9.]$/.test(before) && /^e\d*$|^[eE]$/.test(word)) continue;  // 1e9
    if (KEYWORDS.has(word)) continue;
    if (call && FUNCTIONS.has(word)) continue;
    if (/^(Inf|NaN|inf|nan)$/.test(word)) continue;
    names.add(word);
  }
  return names;
}

// The /metrics contract with the lead's C++ (issue 8), plus the standard names we use.
const HISTOGRAMS = ["wmty_grpc_request_duration_seconds", "wmty_http_request_duration_seconds", "wmty_wal_sync_duration_seconds"];
const SCALARS = [
  "wmty_grpc_requests_total", "wmty_http_requests_total",
  "wmty_rocksdb_block_cache_hits_total", "wmty_rocksdb_block_cache_misses_total", "wmty_rocksdb_compaction_pending",
  "wmty_rocksdb_pending_compaction_bytes", "wmty_rocksdb_live_sst_bytes",
  "wmty_rocksdb_write_stall_seconds_total", "wmty_rocksdb_writes_delayed", "wmty_rocksdb_l0_files",
  "wmty_commit_queue_depth", "wmty_grpc_inflight_rpcs", "wmty_http_inflight_requests", "wmty_http_open_connections",
  "wmty_store_healthy", "wmty_data_dir_available_bytes",
  "wmty_backup_last_success_timestamp_seconds", "wmty_backup_failures_total", "wmty_build_info",
];
export const CONTRACT_METRICS = new Set([...SCALARS, ...HISTOGRAMS.flatMap((h) => [`${h}_bucket`, `${h}_sum`, `${h}_count`])]);
// Prometheus itself, the kubelet's volume stats, cAdvisor and kube-state-metrics.
export const STANDARD_METRICS = new Set([
  "up", "kubelet_volume_stats_available_bytes", "kubelet_volume_stats_capacity_bytes", "kubelet_volume_stats_used_bytes",
  "container_memory_working_set_bytes", "kube_pod_container_status_restarts_total", "kube_pod_container_resource_limits",
  "kube_job_status_failed",
]);

export function unknownMetrics(expr) {
  return [...metricNames(expr)].filter((n) => !CONTRACT_METRICS.has(n) && !STANDARD_METRICS.has(n));
}
