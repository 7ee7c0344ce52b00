// watch_bench: the change feed's fan-out latency (issue 19): `watchers` open
// WatchChanges streams on the real server (in-process, loopback, fresh
// database), then `writes` CreateGoal calls one after another; for each
// (write, watcher) pair the time from the change's commit stamp (the event's
// `time`, set by the store before the group's fsync) to the watcher's
// receipt. Target: p99 <= 50 ms with 1,000 watchers.
//
//   watch_bench --watchers=1000 --writes=200 --channels=10 --interval=100ms
//
// Prints a markdown table; --out appends it to a file.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "latency_histogram.h"
#include "server/server.h"
#include "wmty/client/client.h"
#include "wmty/v1/change_feed.grpc.pb.h"

ABSL_FLAG(int, watchers, 1000, "Open WatchChanges streams");
ABSL_FLAG(int, channels, 10, "Client connections the streams share");
ABSL_FLAG(int, writes, 200, "CreateGoal calls, one after another");
ABSL_FLAG(absl::Duration, interval, absl::Milliseconds(100),
          "Pause after each write (one write -> all notified; 0: back to back, a throughput test)");
ABSL_FLAG(std::string, data_dir, "/tmp/wmty-watch-bench", "Database directory (deleted first)");
ABSL_FLAG(std::string, out, "", "Append the result table to this file");

namespace {

using namespace wmty;

// One stream: records commit-to-receipt latency of every change it gets.
class Watcher : public grpc::ClientReadReactor<v1::WatchChangesResponse> {
 public:
  Watcher(v1::ChangeFeedService::Stub* stub, bench::LatencyHistogram* latency, std::atomic<int64_t>* received)
      : latency_(latency), received_(received) {
    v1::WatchChangesRequest request;
    request.set_start_after(0);
    stub->async()->WatchChanges(&ctx_, &request, this);
    StartRead(&message_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (message_.has_change()) {
      const absl::Time committed = absl::FromUnixSeconds(message_.change().time().seconds()) +
                                   absl::Nanoseconds(message_.change().time().nanos());
      latency_->Record(absl::ToInt64Nanoseconds(absl::Now() - committed));
      received_->fetch_add(1, std::memory_order_relaxed);
    }
    StartRead(&message_);
  }
  void OnDone(const grpc::Status&) override { done_.store(true); }
  void Cancel() { ctx_.TryCancel(); }
  bool done() const { return done_.load(); }

 private:
  grpc::ClientContext ctx_;
  v1::WatchChangesResponse message_;
  bench::LatencyHistogram* latency_;
  std::atomic<int64_t>* received_;
  std::atomic<bool> done_{false};
};

std::string Ms(uint64_t nanos) { return absl::StrFormat("%.2f", static_cast<double>(nanos) / 1e6); }

int Run() {
  const int watchers = absl::GetFlag(FLAGS_watchers);
  const int channels = std::max(1, absl::GetFlag(FLAGS_channels));
  const int writes = absl::GetFlag(FLAGS_writes);
  const std::string dir = absl::GetFlag(FLAGS_data_dir);
  std::filesystem::remove_all(dir);
  server::ServerOptions options;
  options.data_dir = dir;
  options.grpc_listen = "127.0.0.1:0";
  options.http_listen = "";
  options.max_watchers = static_cast<size_t>(watchers) + 16;
  auto server = server::WmtyServer::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "server: %s\n", server.status().ToString().c_str());
    return 1;
  }
  const std::string target = absl::StrCat("127.0.0.1:", (*server)->grpc_port());
  std::vector<std::unique_ptr<v1::ChangeFeedService::Stub>> stubs;
  for (int i = 0; i < channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("wmty.bench.channel", i);  // a connection each
    stubs.push_back(
        v1::ChangeFeedService::NewStub(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args)));
  }
  bench::LatencyHistogram latency;
  std::atomic<int64_t> received{0};
  std::vector<std::unique_ptr<Watcher>> streams;
  for (int i = 0; i < watchers; ++i) {
    streams.push_back(std::make_unique<Watcher>(stubs[i % channels].get(), &latency, &received));
  }
  client::ClientOptions client_options;
  client_options.target = target;
  auto client = client::Client::Connect(client_options);
  // The first write, once every stream is open, is not measured apart: all
  // streams start after 0, so a late one would catch up (and show as slow).
  absl::SleepFor(absl::Seconds(2));
  const absl::Time start = absl::Now();
  for (int i = 0; i < writes; ++i) {
    v1::CreateGoalRequest req;
    req.set_parent(absl::StrCat("patients/bench-", i % 50));
    v1::Goal* goal = req.mutable_goal();
    goal->set_description("Walk to the garden");
    goal->set_lifecycle_status(v1::GOAL_ACTIVE);
    goal->mutable_provenance()->mutable_recorded_by()->set_practitioner_id("rn-17");
    goal->mutable_provenance()->mutable_said_by()->set_kind(v1::Speaker::PATIENT);
    auto written = client->CreateGoal(req);
    if (!written.ok()) {
      std::fprintf(stderr, "write: %s\n", written.status().ToString().c_str());
      return 1;
    }
    absl::SleepFor(absl::GetFlag(FLAGS_interval));
  }
  const int64_t expected = static_cast<int64_t>(watchers) * writes;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (received.load() < expected && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  const absl::Duration elapsed = absl::Now() - start;
  for (auto& stream : streams) stream->Cancel();
  while (!std::all_of(streams.begin(), streams.end(), [](const auto& s) { return s->done(); })) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  (*server)->Shutdown(absl::Seconds(5));
  const std::string table = absl::StrCat(
      "| watchers | writes | events received | p50 ms | p99 ms | p99.9 ms | max ms | elapsed s |\n",
      "|---|---|---|---|---|---|---|---|\n", "| ", watchers, " | ", writes, " | ", received.load(), " / ", expected,
      " | ", Ms(latency.ValueAt(0.50)), " | ", Ms(latency.ValueAt(0.99)), " | ", Ms(latency.ValueAt(0.999)), " | ",
      Ms(latency.max_nanos()), " | ", absl::StrFormat("%.1f", absl::ToDoubleSeconds(elapsed)), " |\n");
  std::fputs(table.c_str(), stdout);
  if (const std::string out = absl::GetFlag(FLAGS_out); !out.empty()) std::ofstream(out, std::ios::app) << table;
  std::filesystem::remove_all(dir);
  return received.load() == expected ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return Run();
}
