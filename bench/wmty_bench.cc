// wmty_bench: first measurements of the core paths (issue 2).
//
//   wmty_bench --records=1000000 --clients=32 --seconds=10
//
// 1. Loads `records` records through the domain core (bulk: unsynced WAL,
//    verified afterwards): many patients with ~20 records each, plus one
//    patient with exactly 50 (20 what-matters, 15 goals, 15 preferences) and
//    priorities.
// 2. Starts the real server in-process on a loopback port and measures:
//    - durable CreateGoal throughput with `clients` concurrent clients (each a
//      thread with its own channel, synchronous calls through wmty::client);
//    - raw RocksDB synced WriteBatch throughput at the same concurrency, with
//      a batch shaped like one CreateGoal (5 puts of the same sizes);
//    - GetPatientSummary latency (p50/p99/p99.9) for the 50-record patient,
//      one caller, sequential calls.
// Prints a markdown table; --out appends it to a file.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <semaphore>
#include <thread>
#include <vector>

#include <jwt.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "auth/token_verifier.h"
#include "domain/patient_records.h"
#include "server/server.h"
#include "storage/store.h"
#include "wmty/client/client.h"

ABSL_FLAG(std::string, data_dir, "/tmp/wmty-bench-db", "Database directory (reused if it holds enough records)");
ABSL_FLAG(bool, fresh, false, "Delete data_dir first");
ABSL_FLAG(int64_t, records, 1000000, "Records in the database");
ABSL_FLAG(int, clients, 32, "Concurrent clients for the write test");
ABSL_FLAG(int, seconds, 10, "Duration of each throughput test");
ABSL_FLAG(int, summary_calls, 5000, "GetPatientSummary calls for the latency test");
ABSL_FLAG(std::string, out, "", "Append the result table to this file");
ABSL_FLAG(bool, load_only, false, "Only load (or reuse) the database in data_dir, then exit (bench/startup.sh)");
ABSL_FLAG(bool, auth_overhead, true,
          "Also measure GetPatientSummary throughput with and without authentication + audit (same run)");

namespace {

using namespace wmty;

constexpr char kHotPatient[] = "bench-hot";

v1::Provenance BenchProvenance() {
  v1::Provenance p;
  p.mutable_recorded_by()->set_practitioner_id("rn-bench");
  p.mutable_recorded_by()->set_role("RN");
  p.mutable_said_by()->set_kind(v1::Speaker::PATIENT);
  p.set_channel(v1::IMPORT);
  return p;
}

v1::Goal BenchGoal(int64_t i) {
  v1::Goal g;
  g.set_description(absl::StrCat("Walk to the end of the garden without resting, goal number ", i));
  g.set_lifecycle_status(v1::GOAL_ACTIVE);
  g.set_achievement_status(v1::IN_PROGRESS);
  g.set_priority(v1::HIGH_PRIORITY);
  g.add_categories(v1::PERSONAL_HEALTH_GOAL);
  g.set_start_date("2026-11-01");
  g.set_target_date("2027-03-01");
  *g.mutable_provenance() = BenchProvenance();
  return g;
}

v1::WhatMatters BenchWhatMatters(int64_t i) {
  v1::WhatMatters w;
  w.set_statement(absl::StrCat("Being at home with my dog and my grandchildren on Sundays (", i, ")"));
  w.set_prompt("What matters most to you today?");
  w.add_life_domains(v1::FAMILY_AND_RELATIONSHIPS);
  *w.mutable_provenance() = BenchProvenance();
  return w;
}

v1::Preference BenchPreference(int64_t i) {
  v1::Preference p;
  p.set_kind(v1::CARE_EXPERIENCE_PREFERENCE);
  p.set_value_text(absl::StrCat("Please call me Bea and knock before entering (", i, ")"));
  *p.mutable_provenance() = BenchProvenance();
  return p;
}

// Loads records through the domain core with many writes in flight.
absl::Status Load(const std::string& dir, int64_t records) {
  storage::StoreOptions options;
  options.path = dir;
  options.sync_writes = false;  // bulk load; VerifyIntegrity below
  options.max_batch_size = 2048;
  auto store = storage::Store::Open(options);
  if (!store.ok()) return store.status();
  auto core = domain::PatientRecords::Create(store->get());
  if (!core.ok()) return core.status();
  const int64_t have = (*store)->LastSequence();
  if (have >= records) {
    std::printf("reusing %s with %lld records\n", dir.c_str(), static_cast<long long>(have));
    return absl::OkStatus();
  }
  if (have != 0) return absl::FailedPreconditionError("data_dir holds a partial load; use --fresh");

  constexpr int kMaxInFlight = 4096;
  std::counting_semaphore<kMaxInFlight> room(kMaxInFlight);
  std::atomic<int64_t> failures{0};
  const absl::Time start = absl::Now();
  auto done = [&](bool ok) {
    if (!ok) failures.fetch_add(1);
    room.release();
  };
  std::vector<std::string> hot_names;
  std::mutex hot_mu;
  domain::CallContext ctx;
  for (int64_t i = 0; i < records; ++i) {
    const bool hot = i < 50;
    const std::string patient = hot ? kHotPatient : absl::StrCat("p", (i - 50) / 20);
    const int which = hot ? (i < 20 ? 0 : i < 35 ? 1 : 2) : static_cast<int>(i % 3);
    room.acquire();
    auto record_hot = [&, hot](const std::string& name) {
      if (!hot) return;
      std::lock_guard<std::mutex> l(hot_mu);
      hot_names.push_back(name);
    };
    if (which == 0) {
      v1::CreateWhatMattersRequest req;
      req.set_parent(absl::StrCat("patients/", patient));
      *req.mutable_what_matters() = BenchWhatMatters(i);
      (*core)->CreateWhatMatters(req, ctx, [&, record_hot](absl::StatusOr<v1::WhatMatters> r) {
        if (r.ok()) record_hot(r->name());
        done(r.ok());
      });
    } else if (which == 1) {
      v1::CreateGoalRequest req;
      req.set_parent(absl::StrCat("patients/", patient));
      *req.mutable_goal() = BenchGoal(i);
      (*core)->CreateGoal(req, ctx, [&, record_hot](absl::StatusOr<v1::Goal> r) {
        if (r.ok()) record_hot(r->name());
        done(r.ok());
      });
    } else {
      v1::CreatePreferenceRequest req;
      req.set_parent(absl::StrCat("patients/", patient));
      *req.mutable_preference() = BenchPreference(i);
      (*core)->CreatePreference(req, ctx, [&, record_hot](absl::StatusOr<v1::Preference> r) {
        if (r.ok()) record_hot(r->name());
        done(r.ok());
      });
    }
    if (i % 100000 == 0 && i > 0) {
      std::printf("  loaded %lld records (%.0f/s)\n", static_cast<long long>(i),
                  i / absl::ToDoubleSeconds(absl::Now() - start));
      std::fflush(stdout);
    }
  }
  for (int i = 0; i < kMaxInFlight; ++i) room.acquire();  // drain: every write has finished
  if (failures.load() > 0) return absl::InternalError(absl::StrCat(failures.load(), " load writes failed"));
  // The hot patient's priorities: its what-matters entries first.
  std::sort(hot_names.begin(), hot_names.end());
  v1::UpdatePrioritiesRequest pr;
  pr.mutable_priorities()->set_name(absl::StrCat("patients/", kHotPatient, "/priorities"));
  for (int i = 0; i < 10 && i < static_cast<int>(hot_names.size()); ++i)
    pr.mutable_priorities()->add_items(hot_names[i]);
  *pr.mutable_priorities()->mutable_provenance() = BenchProvenance();
  std::promise<absl::Status> p;
  (*core)->UpdatePriorities(pr, ctx, [&p](absl::StatusOr<v1::Priorities> r) { p.set_value(r.status()); });
  if (auto s = p.get_future().get(); !s.ok()) return s;
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  std::printf("loaded %lld records in %.1f s (%.0f records/s)\n", static_cast<long long>(records), secs,
              records / secs);
  if (records <= 200000) {
    if (auto s = (*store)->VerifyIntegrity(); !s.ok()) return s;
  }
  return absl::OkStatus();
}

struct Throughput {
  double per_second = 0;
  int64_t ok = 0;
  int64_t errors = 0;
};

Throughput MeasureCreateGoal(const std::string& target, int clients, int seconds) {
  std::atomic<int64_t> ok{0}, errors{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      client::ClientOptions options;
      options.target = target;
      options.timeout = absl::Seconds(10);
      auto cl = client::Client::Connect(options);
      int64_t i = 0;
      while (!stop.load()) {
        v1::CreateGoalRequest req;
        req.set_parent(absl::StrCat("patients/load-", c));
        *req.mutable_goal() = BenchGoal(i++);
        if (cl->CreateGoal(req).ok()) {
          ok.fetch_add(1);
        } else {
          errors.fetch_add(1);
        }
      }
    });
  }
  absl::SleepFor(absl::Milliseconds(500));  // warm up connections
  const int64_t ok0 = ok.load();
  const absl::Time t0 = absl::Now();
  absl::SleepFor(absl::Seconds(seconds));
  const int64_t ok1 = ok.load();
  const absl::Time t1 = absl::Now();
  stop.store(true);
  for (auto& t : threads) t.join();
  return {static_cast<double>(ok1 - ok0) / absl::ToDoubleSeconds(t1 - t0), ok.load(), errors.load()};
}

// Raw RocksDB: `clients` threads each writing a synced WriteBatch shaped like
// one CreateGoal (current + version + id index + change log + request id).
Throughput MeasureRawRocksDb(const std::string& dir, int clients, int seconds, size_t record_bytes) {
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* db = nullptr;
  if (!rocksdb::DB::Open(options, dir, &db).ok()) return {};
  std::atomic<int64_t> ok{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  const std::string value(record_bytes, 'x');
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      rocksdb::WriteOptions wo;
      wo.sync = true;
      for (int64_t i = 0; !stop.load(); ++i) {
        rocksdb::WriteBatch wb;
        const std::string k = absl::StrCat("load-", c, "\0", i);
        wb.Put(absl::StrCat("c", k), value);
        wb.Put(absl::StrCat("v", k), value);
        wb.Put(absl::StrCat("i", k), "load");
        wb.Put(absl::StrCat("l", k), std::string(60, 'l'));
        wb.Put(absl::StrCat("r", k), std::string(60, 'r'));
        if (db->Write(wo, &wb).ok()) ok.fetch_add(1);
      }
    });
  }
  absl::SleepFor(absl::Milliseconds(500));
  const int64_t ok0 = ok.load();
  const absl::Time t0 = absl::Now();
  absl::SleepFor(absl::Seconds(seconds));
  const int64_t ok1 = ok.load();
  const absl::Time t1 = absl::Now();
  stop.store(true);
  for (auto& t : threads) t.join();
  delete db;
  return {static_cast<double>(ok1 - ok0) / absl::ToDoubleSeconds(t1 - t0), ok.load(), 0};
}

struct Latency {
  double p50_us = 0, p99_us = 0, p999_us = 0;
  int entries = 0;
  int errors = 0;
};

Latency MeasureSummary(const std::string& target, int calls) {
  client::ClientOptions options;
  options.target = target;
  auto cl = client::Client::Connect(options);
  v1::GetPatientSummaryRequest req;
  req.set_parent(absl::StrCat("patients/", kHotPatient));
  Latency out;
  for (int i = 0; i < 100; ++i) (void)cl->GetPatientSummary(req);  // warm-up
  std::vector<double> us;
  us.reserve(calls);
  for (int i = 0; i < calls; ++i) {
    const absl::Time t0 = absl::Now();
    auto s = cl->GetPatientSummary(req);
    us.push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
    if (!s.ok()) {
      ++out.errors;
    } else {
      out.entries = s->what_matters_size() + s->goals_size() + s->preferences_size();
    }
  }
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) { return us[std::min(us.size() - 1, static_cast<size_t>(p * us.size()))]; };
  out.p50_us = pct(0.50);
  out.p99_us = pct(0.99);
  out.p999_us = pct(0.999);
  return out;
}

}  // namespace

// GetPatientSummary calls per second from `clients` threads for `seconds`.
double MeasureSummaryQps(const std::string& target, int clients, int seconds, const std::string& token,
                         std::atomic<int64_t>* errors) {
  std::atomic<int64_t> ok{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      client::ClientOptions options;
      options.target = target;
      options.bearer_token = token;
      auto cl = client::Client::Connect(options);
      v1::GetPatientSummaryRequest req;
      req.set_parent(absl::StrCat("patients/", kHotPatient));
      while (!stop.load()) {
        if (cl->GetPatientSummary(req).ok()) {
          ok.fetch_add(1);
        } else {
          errors->fetch_add(1);
        }
      }
    });
  }
  absl::SleepFor(absl::Milliseconds(500));
  const int64_t ok0 = ok.load();
  const absl::Time t0 = absl::Now();
  absl::SleepFor(absl::Seconds(seconds));
  const double qps = static_cast<double>(ok.load() - ok0) / absl::ToDoubleSeconds(absl::Now() - t0);
  stop.store(true);
  for (auto& t : threads) t.join();
  return qps;
}

std::string DevToken(const std::string& secret) {
  jwt_t* jwt = nullptr;
  jwt_new(&jwt);
  jwt_add_grant(jwt, "iss", "bench");
  jwt_add_grant(jwt, "aud", "wmty");
  jwt_add_grant(jwt, "sub", "Practitioner/bench");
  jwt_add_grant(jwt, "scope", "user/*.cruds");
  jwt_add_grant_int(jwt, "exp", absl::ToUnixSeconds(absl::Now()) + 3600);
  jwt_set_alg(jwt, JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(secret.data()),
              static_cast<int>(secret.size()));
  char* encoded = jwt_encode_str(jwt);
  std::string token = encoded;
  free(encoded);
  jwt_free(jwt);
  return token;
}

// Summary throughput without and with authentication + audit, same data,
// same run (issue 4: the cost should stay within 15%).
std::string MeasureAuthOverhead(const std::string& dir, int seconds) {
  const std::string secret(48, 'b');
  double qps[2] = {0, 0};
  std::atomic<int64_t> errors{0};
  for (int with_auth = 0; with_auth < 2; ++with_auth) {
    server::ServerOptions options;
    options.data_dir = dir;
    options.grpc_listen = "127.0.0.1:0";
    options.http_listen = "127.0.0.1:0";
    if (with_auth) {
      auth::VerifierOptions vo;
      vo.issuer = "bench";
      vo.audience = "wmty";
      options.verifier = std::move(*auth::TokenVerifier::FromHs256Secret(secret, vo));
    }
    auto server = server::WmtyServer::Start(options);
    if (!server.ok()) return "server failed";
    qps[with_auth] = MeasureSummaryQps(absl::StrCat("127.0.0.1:", (*server)->grpc_port()), 8, seconds,
                                       with_auth ? DevToken(secret) : "", &errors);
    (*server)->Shutdown(absl::Seconds(5));
  }
  return absl::StrFormat(
      "| GetPatientSummary, 8 clients: no auth / auth + audit | %.0f/s / %.0f/s (%.1f%% lower; %lld errors) |\n",
      qps[0], qps[1], qps[0] > 0 ? 100.0 * (qps[0] - qps[1]) / qps[0] : 0.0, static_cast<long long>(errors.load()));
}

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string dir = absl::GetFlag(FLAGS_data_dir);
  const int64_t records = absl::GetFlag(FLAGS_records);
  const int clients = absl::GetFlag(FLAGS_clients);
  const int seconds = absl::GetFlag(FLAGS_seconds);
  if (absl::GetFlag(FLAGS_fresh)) std::filesystem::remove_all(dir);

  if (auto s = Load(dir, records); !s.ok()) {
    std::fprintf(stderr, "load failed: %s\n", s.ToString().c_str());
    return 1;
  }
  if (absl::GetFlag(FLAGS_load_only)) return 0;

  server::ServerOptions options;
  options.data_dir = dir;
  options.grpc_listen = "127.0.0.1:0";
  options.http_listen = "127.0.0.1:0";  // never the fixed 8080: runs may overlap
  auto server = server::WmtyServer::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "server failed: %s\n", server.status().ToString().c_str());
    return 1;
  }
  const std::string target = absl::StrCat("127.0.0.1:", (*server)->grpc_port());
  const Latency summary = MeasureSummary(target, absl::GetFlag(FLAGS_summary_calls));
  const Throughput create = MeasureCreateGoal(target, clients, seconds);
  (*server)->Shutdown(absl::Seconds(5));

  const std::string raw_dir = dir + "-raw-rocksdb";
  std::filesystem::remove_all(raw_dir);
  const size_t goal_bytes = BenchGoal(123456).ByteSizeLong() + 40;
  const Throughput raw = MeasureRawRocksDb(raw_dir, clients, seconds, goal_bytes);
  std::filesystem::remove_all(raw_dir);

  std::string table = absl::StrFormat(
      "\n| measurement (%lld records, %d cores) | value |\n|---|---|\n"
      "| durable CreateGoal, %d clients (gRPC, wmty_client) | %.0f/s (%lld ok, %lld errors) |\n"
      "| raw RocksDB synced WriteBatch, %d writers (same shape) | %.0f/s |\n"
      "| CreateGoal / raw RocksDB | %.0f%% |\n"
      "| GetPatientSummary, %d-entry patient, sequential: p50 / p99 / p99.9 | %.0f / %.0f / %.0f us (%d errors) |\n",
      static_cast<long long>(records), static_cast<int>(std::thread::hardware_concurrency()), clients,
      create.per_second, static_cast<long long>(create.ok), static_cast<long long>(create.errors), clients,
      raw.per_second, raw.per_second > 0 ? 100.0 * create.per_second / raw.per_second : 0.0, summary.entries,
      summary.p50_us, summary.p99_us, summary.p999_us, summary.errors);
  if (absl::GetFlag(FLAGS_auth_overhead)) table += MeasureAuthOverhead(dir, seconds);
  std::printf("%s", table.c_str());
  if (!absl::GetFlag(FLAGS_out).empty()) {
    std::ofstream out(absl::GetFlag(FLAGS_out), std::ios::app);
    out << "\n## " << absl::FormatTime(absl::Now()) << table;
  }
  return (create.errors > 0 || summary.errors > 0 || summary.entries != 50) ? 1 : 0;
}
