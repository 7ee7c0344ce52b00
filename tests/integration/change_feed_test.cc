// wmty.v1.ChangeFeedService.WatchChanges end to end: the real wmtyd, real
// gRPC clients (the generated stub), real writes through the C++ client.
//   - resume after a disconnect, and across kill -9 of the server while
//     writes go on: every change exactly once, in order, none missing;
//   - a consumer that stops reading: the server's memory stays bounded, the
//     stream ends RESOURCE_EXHAUSTED with a resume point that then works;
//   - a patient/ token sees only its patient and is refused another;
//   - 1,000 idle watchers all get a change, without a server thread each;
//   - OUT_OF_RANGE (with the oldest sequence) after the log was trimmed,
//     and a live watcher unaffected by retention trimming behind it;
//   - SIGTERM ends open watches UNAVAILABLE and does not wait for them;
//   - malformed requests get INVALID_ARGUMENT naming the field.
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "fhir/http_client.h"
#include "integration/integration_util.h"
#include "storage/store.h"
#include "support/test_support.h"
#include "support/test_tokens.h"
#include "wmty/v1/change_feed.grpc.pb.h"

namespace wmty::testing {
namespace {

using ::testing::ElementsAre;
using Code = absl::StatusCode;

// One WatchChanges stream read synchronously (the generated stub).
class Stream {
 public:
  Stream(const std::string& target, const v1::WatchChangesRequest& request, const std::string& token = "",
         absl::Duration limit = absl::Seconds(60))
      : stub_(v1::ChangeFeedService::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()))) {
    ctx_.set_deadline(absl::ToChronoTime(absl::Now() + limit));
    if (!token.empty()) ctx_.AddMetadata("authorization", "Bearer " + token);
    reader_ = stub_->WatchChanges(&ctx_, request);
  }
  // The next message; nullopt when the stream ended (then see Finish).
  std::optional<v1::WatchChangesResponse> Read() {
    v1::WatchChangesResponse message;
    if (!reader_->Read(&message)) return std::nullopt;
    return message;
  }
  // The next change event (skipping heartbeats and the summary).
  std::optional<v1::ChangeEvent> NextChange() {
    for (;;) {
      auto message = Read();
      if (!message.has_value()) return std::nullopt;
      if (message->has_change()) return message->change();
    }
  }
  absl::Status Finish() { return FromGrpcStatus(reader_->Finish()); }
  void Cancel() { ctx_.TryCancel(); }

 private:
  std::unique_ptr<v1::ChangeFeedService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<v1::WatchChangesResponse>> reader_;
};

v1::WatchChangesRequest After(uint64_t sequence) {
  v1::WatchChangesRequest request;
  request.set_start_after(sequence);
  return request;
}

std::string ErrorInfoValue(const absl::Status& status, const std::string& key) {
  auto info = ErrorInfoOf(status);
  if (!info.has_value() || !info->metadata().contains(key)) return "";
  return info->metadata().at(key);
}

// "VmRSS" or "Threads" of /proc/<pid>/status.
int64_t ProcStatus(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field + ":", 0) != 0) continue;
    std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    int64_t value = 0;
    if (parts.size() >= 2 && absl::SimpleAtoi(parts[1], &value)) return value;
  }
  return -1;
}

// A metric's value in a /metrics scrape (-1 if absent).
double Metric(int metrics_port, const std::string& name) {
  HttpClient http(metrics_port);
  HttpResponse r = http.Get("/metrics");
  for (absl::string_view line : absl::StrSplit(r.body, '\n')) {
    if (!absl::ConsumePrefix(&line, name + " ")) continue;
    double value = 0;
    if (absl::SimpleAtod(line, &value)) return value;
  }
  return -1;
}

int ReadPortFile(const std::string& path) {
  std::ifstream in(path);
  int port = 0;
  in >> port;
  return port;
}

class ChangeFeedTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> flags = {}) {
    auto server = ServerProcess::Start(dir_.path() + "/data", std::move(flags));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = server_->NewClient();
  }
  // Creates a goal; its name (fails the test if the write fails).
  std::string NewGoal(const std::string& patient, const std::string& description = "Walk to the garden") {
    v1::CreateGoalRequest req;
    req.set_parent("patients/" + patient);
    *req.mutable_goal() = ValidGoal(description);
    auto goal = client_->CreateGoal(req);
    EXPECT_TRUE(goal.ok()) << goal.status();
    return goal.ok() ? goal->name() : "";
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(ChangeFeedTest, ResumesAfterADisconnectExactlyOnce) {
  Start();
  std::vector<std::string> names;
  for (int i = 0; i < 5; ++i) names.push_back(NewGoal("p1"));
  uint64_t last = 0;
  {
    Stream stream(server_->target(), After(0));
    for (int i = 0; i < 3; ++i) {
      auto change = stream.NextChange();
      ASSERT_TRUE(change.has_value()) << stream.Finish();
      EXPECT_EQ(change->sequence(), last + 1);
      EXPECT_EQ(change->name(), names[i]);
      last = change->sequence();
    }
    stream.Cancel();
  }
  Stream resumed(server_->target(), After(last));
  for (int i = 0; i < 3; ++i) names.push_back(NewGoal("p2"));
  for (size_t i = 3; i < names.size(); ++i) {
    auto change = resumed.NextChange();
    ASSERT_TRUE(change.has_value()) << resumed.Finish();
    EXPECT_EQ(change->sequence(), last + 1);
    EXPECT_EQ(change->name(), names[i]);
    last = change->sequence();
  }
}

// A watcher that reconnects to each incarnation of the server with the last
// sequence it saw, while a writer goes on and the server is killed with
// SIGKILL at a random moment, several times.
TEST_F(ChangeFeedTest, ResumesAcrossKillNineWithNoGapAndNoDuplicate) {
  constexpr int kCycles = 3;
  std::mt19937 random(19);
  std::mutex mu;
  std::vector<uint64_t> seen;                         // every sequence received, in order
  std::map<std::string, std::set<int64_t>> received;  // name -> versions received
  std::map<std::string, std::set<int64_t>> acked;     // name -> versions the server acknowledged
  std::string final_goal;                             // once set and received, the watcher stops
  uint64_t last = 0;
  auto watch = [&](const std::string& target) {
    v1::WatchChangesRequest request = After(last);
    request.mutable_heartbeat_interval()->set_seconds(1);
    Stream stream(target, request, "", absl::Seconds(120));
    while (auto message = stream.Read()) {
      std::lock_guard<std::mutex> lock(mu);
      if (message->has_change()) {
        seen.push_back(message->change().sequence());
        received[message->change().name()].insert(message->change().version());
        last = message->change().sequence();
      }
      if (!final_goal.empty() && received.contains(final_goal)) {
        stream.Cancel();
        return;
      }
    }
  };
  for (int cycle = 0; cycle <= kCycles; ++cycle) {
    Start();
    std::thread watcher(watch, server_->target());
    std::atomic<bool> stop{false};
    std::thread writer([&, cycle] {
      auto client = server_->NewClient(absl::Seconds(5));
      for (int i = 0; !stop.load(); ++i) {
        v1::CreateGoalRequest req;
        req.set_parent(absl::StrCat("patients/p", i % 3));
        *req.mutable_goal() = ValidGoal(absl::StrCat("goal ", cycle, "-", i));
        auto goal = client->CreateGoal(req);
        if (!goal.ok()) return;  // the server is gone
        std::lock_guard<std::mutex> lock(mu);
        acked[goal->name()].insert(goal->version());
      }
    });
    if (cycle < kCycles) {
      absl::SleepFor(absl::Milliseconds(std::uniform_int_distribution<int>(300, 900)(random)));
      server_->Kill();
      writer.join();
    } else {
      absl::SleepFor(absl::Milliseconds(500));
      stop = true;
      writer.join();
      const std::string name = NewGoal("p-final");
      std::lock_guard<std::mutex> lock(mu);
      final_goal = name;
    }
    watcher.join();
  }
  std::lock_guard<std::mutex> lock(mu);
  // Exactly once, in order: 1, 2, 3, ... without a gap.
  ASSERT_GT(seen.size(), 10u);
  for (size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i], i + 1) << "at index " << i;
  for (const auto& [name, versions] : acked) {
    for (int64_t version : versions) {
      EXPECT_TRUE(received[name].contains(version)) << name << " version " << version << " acknowledged, not seen";
    }
  }
}

// A client that stops reading: the server keeps at most a small buffer for
// it (its memory does not grow with what is written meanwhile), ends the
// stream RESOURCE_EXHAUSTED with the sequence to resume after, and a stream
// started there gets the rest.
TEST_F(ChangeFeedTest, StuckConsumerCostsBoundedMemoryAndEndsWithAResumePoint) {
  const std::string metrics_port_file = dir_.path() + "/metrics.port";
  Start({"--watch_stall_timeout=3s", "--metrics_listen=127.0.0.1:0", "--metrics_port_file=" + metrics_port_file,
         "--memtable_mb=4", "--block_cache_mb=4", "--summary_cache_mb=0"});
  const int metrics_port = ReadPortFile(metrics_port_file);
  ASSERT_GT(metrics_port, 0);
  // Warm up (connections, arenas, the memtable), then the same writes
  // without and with a watcher that does not read: what the watcher adds.
  const std::string text(12 * 1024, 'g');
  constexpr int kWarmUp = 50;
  constexpr int kWrites = 1500;  // ~18 MB of resources
  for (int i = 0; i < kWarmUp; ++i) NewGoal("p1", text);
  const int64_t rss_start = ProcStatus(server_->pid(), "VmRSS");
  for (int i = 0; i < kWrites; ++i) NewGoal("p1", text);
  const int64_t rss_control = ProcStatus(server_->pid(), "VmRSS");
  const uint64_t start_after = kWarmUp + kWrites;
  v1::WatchChangesRequest request = After(start_after);
  request.set_include_resource(true);
  Stream stuck(server_->target(), request, "", absl::Seconds(240));  // not read until the end
  const int64_t rss_before = ProcStatus(server_->pid(), "VmRSS");
  for (int i = 0; i < kWrites; ++i) NewGoal("p1", text);
  const int64_t rss_after = ProcStatus(server_->pid(), "VmRSS");
  ASSERT_GT(rss_start, 0);
  // Were the watcher's events queued, it would add more than 18 MB.
  const int64_t control = rss_control - rss_start;
  const int64_t with_watcher = rss_after - rss_before;
  EXPECT_LT(with_watcher, control + 8 * 1024) << "kB; without a watcher " << control << " kB";
  // The server gives up on the stream (within the stall timeout).
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (Metric(metrics_port, "wmty_change_feed_slow_watchers_total") < 1 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(Metric(metrics_port, "wmty_change_feed_slow_watchers_total"), 1);
  // What the transport held comes first, in order, then the end.
  uint64_t last = start_after;
  while (auto change = stuck.NextChange()) {
    ASSERT_EQ(change->sequence(), last + 1);
    last = change->sequence();
  }
  absl::Status end = stuck.Finish();
  ASSERT_THAT(end, StatusIs(Code::kResourceExhausted));
  EXPECT_EQ(ErrorInfoOf(end)->reason(), "WATCHER_TOO_SLOW");
  EXPECT_EQ(ErrorInfoValue(end, "resume_after_sequence"), absl::StrCat(last));
  EXPECT_LT(last, start_after + kWrites);
  Stream resumed(server_->target(), After(last));
  for (uint64_t expected = last + 1; expected <= start_after + kWrites; ++expected) {
    auto change = resumed.NextChange();
    ASSERT_TRUE(change.has_value()) << resumed.Finish();
    ASSERT_EQ(change->sequence(), expected);
  }
}

TEST_F(ChangeFeedTest, MalformedRequestsNameTheField) {
  Start();
  v1::WatchChangesRequest request;
  request.set_parent("patients/");
  request.add_kinds(v1::RESOURCE_KIND_UNSPECIFIED);
  Stream bad(server_->target(), request);
  EXPECT_FALSE(bad.Read().has_value());
  absl::Status status = bad.Finish();
  EXPECT_THAT(status, StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(status), ElementsAre("parent", "kinds[0]"));
  Stream beyond(server_->target(), After(7));
  EXPECT_FALSE(beyond.Read().has_value());
  EXPECT_THAT(ViolatedFields(beyond.Finish()), ElementsAre("start_after"));
}

// The log trimmed (the store opened offline between two runs): an old
// start_after is refused OUT_OF_RANGE naming the oldest sequence left, and a
// watch from there on works.
TEST_F(ChangeFeedTest, TrimmedLogIsOutOfRangeWithTheOldestSequence) {
  Start();
  for (int i = 0; i < 6; ++i) NewGoal("p1");
  ASSERT_EQ(server_->Terminate(), 0);
  {
    storage::StoreOptions options;
    options.path = dir_.path() + "/data";
    auto store = storage::Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->TrimChangeLog(4).ok());
  }
  Start();
  Stream old(server_->target(), After(2));
  EXPECT_FALSE(old.Read().has_value());
  absl::Status status = old.Finish();
  EXPECT_THAT(status, StatusIs(Code::kOutOfRange));
  EXPECT_EQ(ErrorInfoOf(status)->reason(), "CHANGE_LOG_TRIMMED");
  EXPECT_EQ(ErrorInfoValue(status, "oldest_available_sequence"), "5");
  Stream fine(server_->target(), After(4));
  auto change = fine.NextChange();
  ASSERT_TRUE(change.has_value()) << fine.Finish();
  EXPECT_EQ(change->sequence(), 5u);
}

// SIGTERM with watches open: they end UNAVAILABLE at once (clients resume
// elsewhere), and the drain does not wait out the grace period for them.
TEST_F(ChangeFeedTest, ShutdownEndsWatchesUnavailableWithoutWaitingForThem) {
  Start({"--shutdown_grace=60s"});
  Stream a(server_->target(), After(0));
  Stream b(server_->target(), After(0));
  NewGoal("p1");
  ASSERT_TRUE(a.NextChange().has_value());
  ASSERT_TRUE(b.NextChange().has_value());
  // Far less than the grace period: a drain that waited for the open
  // streams would take the whole 60 s.
  EXPECT_EQ(server_->Terminate(absl::Seconds(30)), 0);
  EXPECT_FALSE(a.Read().has_value());
  EXPECT_THAT(a.Finish(), StatusIs(Code::kUnavailable));
  EXPECT_FALSE(b.Read().has_value());
  EXPECT_THAT(b.Finish(), StatusIs(Code::kUnavailable));
}

// With authentication: a patient/ token watches its own patient only (also
// without a parent), is refused another patient and kinds it cannot read;
// every watch is audited.
TEST_F(ChangeFeedTest, PatientTokenSeesOnlyItsPatient) {
  Start(Hs256AuthFlagsIn(dir_.path()));
  const std::string system = SignToken({"system/*.cruds", ""});
  client::ClientOptions options;
  options.target = server_->target();
  options.bearer_token = system;
  client_ = client::Client::Connect(options);
  const std::string pa = SignToken({"patient/Goal.rs patient/Observation.rs", "pa"});

  Stream unauthenticated(server_->target(), After(0));
  EXPECT_FALSE(unauthenticated.Read().has_value());
  EXPECT_THAT(unauthenticated.Finish(), StatusIs(Code::kUnauthenticated));

  v1::WatchChangesRequest other = After(0);
  other.set_parent("patients/pb");
  Stream refused(server_->target(), other, pa);
  EXPECT_FALSE(refused.Read().has_value());
  EXPECT_THAT(refused.Finish(), StatusIs(Code::kPermissionDenied));

  v1::WatchChangesRequest lists = After(0);
  lists.add_kinds(v1::RESOURCE_KIND_PRIORITIES);
  Stream no_scope(server_->target(), lists, pa);
  EXPECT_FALSE(no_scope.Read().has_value());
  EXPECT_THAT(no_scope.Finish(), StatusIs(Code::kPermissionDenied));

  v1::WatchChangesRequest summary;
  summary.set_parent("patients/pa");
  summary.set_include_summary(true);
  Stream no_list_scope(server_->target(), summary, pa);  // the summary needs List.r too
  EXPECT_FALSE(no_list_scope.Read().has_value());
  EXPECT_THAT(no_list_scope.Finish(), StatusIs(Code::kPermissionDenied));

  Stream own(server_->target(), After(0), pa);  // no parent: its own patient
  NewGoal("pb");
  const std::string mine = NewGoal("pa");
  NewGoal("pb");
  const std::string mine_too = NewGoal("pa");
  auto first = own.NextChange();
  ASSERT_TRUE(first.has_value()) << own.Finish();
  EXPECT_EQ(first->name(), mine);
  EXPECT_EQ(first->sequence(), 2u);
  auto second = own.NextChange();
  ASSERT_TRUE(second.has_value()) << own.Finish();
  EXPECT_EQ(second->name(), mine_too);
  EXPECT_EQ(second->patient(), "patients/pa");

  // The audit trail holds each watch, refused or not (FHIR AuditEvent).
  HttpClient http(server_->http_port());
  HttpResponse audit =
      http.Get("/fhir/AuditEvent?_count=100", {{"Authorization", "Bearer " + SignToken({"system/AuditEvent.rs", ""})}});
  ASSERT_EQ(audit.status, 200) << audit.Describe();
  size_t watches = 0;
  for (size_t at = audit.body.find("(grpc watch)"); at != std::string::npos;
       at = audit.body.find("(grpc watch)", at + 1)) {
    ++watches;
  }
  EXPECT_EQ(watches, 5u) << audit.body;
}

// 1,000 watchers on one server: each gets the one change written, and the
// server does not start a thread per watcher.
TEST_F(ChangeFeedTest, ThousandIdleWatchersAreCheapAndAllNotified) {
  constexpr int kWatchers = 1000;
  constexpr int kChannels = 10;
  Start({"--max_watchers=2000"});
  NewGoal("p0");  // a connection and the server's threads warmed up
  const int64_t threads_before = ProcStatus(server_->pid(), "Threads");

  class Watcher : public grpc::ClientReadReactor<v1::WatchChangesResponse> {
   public:
    Watcher(v1::ChangeFeedService::Stub* stub, std::atomic<int>* notified) : notified_(notified) {
      v1::WatchChangesRequest request = After(1);
      stub->async()->WatchChanges(&ctx_, &request, this);
      StartRead(&message_);
      StartCall();
    }
    void OnReadDone(bool ok) override {
      if (!ok) return;
      if (message_.has_change() && message_.change().sequence() == 2) notified_->fetch_add(1);
      StartRead(&message_);
    }
    void OnDone(const grpc::Status& status) override {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
      status_ = status;
      cv_.notify_all();
    }
    void Cancel() { ctx_.TryCancel(); }
    void AwaitDone() {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return done_; });
    }

   private:
    grpc::ClientContext ctx_;
    v1::WatchChangesResponse message_;
    std::atomic<int>* notified_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool done_ = false;
    grpc::Status status_;
  };

  std::vector<std::unique_ptr<v1::ChangeFeedService::Stub>> stubs;
  for (int i = 0; i < kChannels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("wmty.test.channel", i);  // a connection each
    stubs.push_back(v1::ChangeFeedService::NewStub(
        grpc::CreateCustomChannel(server_->target(), grpc::InsecureChannelCredentials(), args)));
  }
  std::atomic<int> notified{0};
  std::vector<std::unique_ptr<Watcher>> watchers;
  for (int i = 0; i < kWatchers; ++i) {
    watchers.push_back(std::make_unique<Watcher>(stubs[i % kChannels].get(), &notified));
  }
  NewGoal("p1");
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (notified.load() < kWatchers && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(notified.load(), kWatchers);
  // All open and idle now: no thread per watcher.
  const int64_t threads_after = ProcStatus(server_->pid(), "Threads");
  EXPECT_LT(threads_after - threads_before, 50) << threads_before << " -> " << threads_after;
  for (auto& watcher : watchers) watcher->Cancel();
  for (auto& watcher : watchers) watcher->AwaitDone();
}

// include_summary: the patient's summary first, then the changes after it.
TEST_F(ChangeFeedTest, SummaryFirstThenChanges) {
  Start();
  const std::string before = NewGoal("p1");
  NewGoal("p2");
  v1::WatchChangesRequest request;
  request.set_parent("patients/p1");
  request.set_include_summary(true);
  request.set_include_resource(true);
  Stream stream(server_->target(), request);
  auto first = stream.Read();
  ASSERT_TRUE(first.has_value() && first->has_summary()) << stream.Finish();
  EXPECT_EQ(first->summary().after_sequence(), 2u);
  ASSERT_EQ(first->summary().summary().goals_size(), 1);
  EXPECT_EQ(first->summary().summary().goals(0).name(), before);
  const std::string after = NewGoal("p1");
  auto change = stream.NextChange();
  ASSERT_TRUE(change.has_value()) << stream.Finish();
  EXPECT_EQ(change->sequence(), 3u);
  EXPECT_EQ(change->goal().name(), after);
}

// Retention trims the log while a watcher follows it live: the watcher
// keeps getting every change; a watch from before the oldest entry left is
// refused OUT_OF_RANGE.
TEST_F(ChangeFeedTest, LiveWatcherKeepsWorkingWhileRetentionTrims) {
  Start({"--change_log_retention_changes=50", "--change_log_trim_interval=50ms"});
  Stream live(server_->target(), After(0));
  constexpr uint64_t kWrites = 200;
  std::thread writer([this] {
    for (uint64_t i = 0; i < kWrites; ++i) NewGoal(absl::StrCat("p", i % 7));
  });
  for (uint64_t expected = 1; expected <= kWrites; ++expected) {
    auto change = live.NextChange();
    ASSERT_TRUE(change.has_value()) << live.Finish();
    ASSERT_EQ(change->sequence(), expected);
  }
  writer.join();
  absl::Status old = absl::OkStatus();
  for (const absl::Time deadline = absl::Now() + absl::Seconds(30); absl::Now() < deadline;) {
    Stream from_start(server_->target(), After(0), "", absl::Seconds(2));
    from_start.Read();  // nothing comes: the stream ends or the deadline passes
    old = from_start.Finish();
    if (old.code() == Code::kOutOfRange) break;
  }
  EXPECT_THAT(old, StatusIs(Code::kOutOfRange));
  uint64_t oldest = 0;
  EXPECT_TRUE(absl::SimpleAtoi(ErrorInfoValue(old, "oldest_available_sequence"), &oldest));
  EXPECT_GT(oldest, 1u);
  EXPECT_LE(oldest, kWrites - 49);
}

}  // namespace
}  // namespace wmty::testing
