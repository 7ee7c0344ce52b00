-- Appended by bench/run.sh to each wrk script it runs (wrk takes one script):
-- after the run, one
-- machine-readable line with the request count, the errors and the latency
-- percentiles (wrk's own histogram, microseconds; --latency prints no p99.9).
--   WRKSTATS requests=N duration_us=N non2xx=N socket_errors=N p50_us=N p99_us=N p999_us=N max_us=N
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKSTATS requests=%d duration_us=%d non2xx=%d socket_errors=%d p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
