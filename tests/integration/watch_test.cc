// The client's change-feed watcher (wmty::client::Watcher) against the real
// wmtyd: it receives writes as they commit, and across kill -9 and restarts
// of the server (on the same port and data dir) it resumes by itself with no
// missing and no repeated change. Writes come from the real client.
#include "wmty/client/watch.h"

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "support/test_support.h"
#include "wmty/client/client.h"

namespace wmty::testing {
namespace {

using ::testing::HasSubstr;

// Bound on waiting for something the test expects to happen; never reached
// when things work.
constexpr absl::Duration kHung = absl::Seconds(60);

// Quick reconnects: a restart here takes about a second.
client::WatchOptions Options() {
  client::WatchOptions o;
  o.initial_backoff = absl::Milliseconds(20);
  o.max_backoff = absl::Milliseconds(500);
  o.heartbeat_interval = absl::Seconds(1);
  return o;
}

v1::CreateWhatMattersRequest NewWhatMatters(const std::string& patient, int i) {
  v1::CreateWhatMattersRequest req;
  req.set_parent("patients/" + patient);
  *req.mutable_what_matters() = ValidWhatMatters(absl::StrCat("Garden bed number ", i));
  return req;
}

// The next change (heartbeats skipped), or a failed test.
std::optional<v1::ChangeEvent> NextChange(client::Watcher& w) {
  const absl::Time give_up = absl::Now() + kHung;
  for (;;) {
    absl::StatusOr<v1::WatchChangesResponse> m = w.Next(give_up - absl::Now());
    if (!m.ok()) {
      ADD_FAILURE() << m.status();
      return std::nullopt;
    }
    if (m->has_change()) return m->change();
  }
}

TEST(WatchTest, ReceivesWritesAsTheyCommitInOrder) {
  TempDir dir;
  auto server = ServerProcess::Start(dir.path() + "/data");
  ASSERT_TRUE(server.ok()) << server.status();
  auto writer = (*server)->NewClient();

  client::WatchOptions o = Options();
  o.parent = "patients/w1";
  o.include_resource = true;
  auto watch = (*server)->NewClient()->WatchChanges(o);
  // From now: the position is known once the first heartbeat is in.
  while (!watch->position().has_value()) ASSERT_TRUE(watch->Next(kHung).ok());

  auto created = writer->CreateWhatMatters(NewWhatMatters("w1", 1));
  ASSERT_TRUE(created.ok()) << created.status();
  auto other = writer->CreateWhatMatters(NewWhatMatters("w2", 1));  // another patient: filtered out
  ASSERT_TRUE(other.ok()) << other.status();
  v1::RetractRequest retract;
  retract.set_name(created->name());
  retract.mutable_retracted_by()->set_practitioner_id("rn-17");
  ASSERT_TRUE(writer->RetractWhatMatters(retract).ok());

  std::optional<v1::ChangeEvent> c1 = NextChange(*watch);
  ASSERT_TRUE(c1.has_value());
  EXPECT_EQ(c1->patient(), "patients/w1");
  EXPECT_EQ(c1->kind(), v1::RESOURCE_KIND_WHAT_MATTERS);
  EXPECT_EQ(c1->name(), created->name());
  EXPECT_EQ(c1->version(), 1);
  EXPECT_EQ(c1->operation(), v1::ChangeEvent::CREATE);
  EXPECT_EQ(c1->what_matters().statement(), "Garden bed number 1");
  std::optional<v1::ChangeEvent> c2 = NextChange(*watch);
  ASSERT_TRUE(c2.has_value());
  EXPECT_EQ(c2->name(), created->name());
  EXPECT_EQ(c2->version(), 2);
  EXPECT_EQ(c2->operation(), v1::ChangeEvent::RETRACT);
  EXPECT_EQ(c2->sequence(), c1->sequence() + 2);  // the other patient's change between them
  EXPECT_EQ(watch->position(), c2->sequence());
}

// Collects what a watcher returns, on a thread of its own, until cancelled.
class Collector {
 public:
  explicit Collector(std::unique_ptr<client::Watcher> watch) : watch_(std::move(watch)), thread_([this] { Run(); }) {}
  ~Collector() {
    watch_->Cancel();
    thread_.join();
  }

  // Waits until a change of `name` at `version` has come (false: hung).
  bool AwaitChange(const std::string& name, int64_t version) {
    absl::MutexLock lock(&mu_);
    auto seen = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return !end_.ok() || (versions_.count(name) > 0 && versions_.at(name).count(version) > 0);
    };
    return mu_.AwaitWithTimeout(absl::Condition(&seen), kHung) && end_.ok();
  }
  std::vector<uint64_t> sequences() const {
    absl::MutexLock lock(&mu_);
    return sequences_;
  }
  // name -> version -> times seen.
  std::map<std::string, std::map<int64_t, int>> versions() const {
    absl::MutexLock lock(&mu_);
    return versions_;
  }
  client::Watcher& watch() { return *watch_; }

 private:
  void Run() {
    for (;;) {
      absl::StatusOr<v1::WatchChangesResponse> m = watch_->Next();
      absl::MutexLock lock(&mu_);
      if (!m.ok()) {
        if (m.status().code() != absl::StatusCode::kCancelled) end_ = m.status();
        return;
      }
      if (!m->has_change()) continue;
      sequences_.push_back(m->change().sequence());
      ++versions_[m->change().name()][m->change().version()];
    }
  }

  std::unique_ptr<client::Watcher> watch_;
  mutable absl::Mutex mu_;
  std::vector<uint64_t> sequences_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::map<int64_t, int>> versions_ ABSL_GUARDED_BY(mu_);
  absl::Status end_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// Writers keep writing while the server is killed with SIGKILL and started
// again, three times. Every acknowledged write must reach the watcher exactly
// once, and the watcher must see the log without a gap: with no filter it
// sees every sequence (1, 2, 3, ...), each once, in order, including writes
// committed but not acknowledged before a kill.
TEST(WatchTest, ResumesAcrossKillNineWithNoGapAndNoRepeat) {
  TempDir dir;
  const std::string data = dir.path() + "/data";
  auto server = ServerProcess::Start(data);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string target = (*server)->target();
  std::vector<std::string> reconnect_reasons;
  client::WatchOptions o = Options();
  o.start_after = 0;  // the whole log
  o.on_retry = [&](const absl::Status& why, absl::Duration) { reconnect_reasons.push_back(why.ToString()); };
  client::ClientOptions co;
  co.target = target;
  co.timeout = absl::Seconds(2);
  Collector collector(client::Client::Connect(co)->WatchChanges(o));

  absl::Mutex mu;
  std::vector<std::pair<std::string, int64_t>> acknowledged;  // name, version
  std::atomic<bool> stop{false};
  auto write = [&](int w) {
    auto client = client::Client::Connect(co);
    for (int i = 0; !stop; ++i) {
      auto r = client->CreateWhatMatters(NewWhatMatters(absl::StrCat("k", w), i));
      if (!r.ok()) continue;  // the server is down: not acknowledged
      absl::MutexLock lock(&mu);
      acknowledged.emplace_back(r->name(), r->version());
    }
  };
  constexpr int kCycles = 3;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    std::vector<std::thread> writers;
    for (int w = 0; w < 2; ++w) writers.emplace_back(write, w);
    // Let some writes through (and the watcher behind them), then kill.
    bool wrote = false;
    {
      absl::MutexLock lock(&mu);
      auto enough = [&, want = 20 * static_cast<size_t>(cycle + 1)] { return acknowledged.size() >= want; };
      wrote = mu.AwaitWithTimeout(absl::Condition(&enough), kHung);
    }
    (*server)->Kill();
    stop = true;
    for (auto& t : writers) t.join();
    stop = false;
    ASSERT_TRUE(wrote) << "writes do not get through";
    auto again = ServerProcess::Start(data, {"--grpc_listen=" + target});  // same port: the watcher reconnects
    ASSERT_TRUE(again.ok()) << again.status();
    server = std::move(again);
  }
  // One more write after the last restart, so the watcher must have resumed.
  auto last = client::Client::Connect(co)->CreateWhatMatters(NewWhatMatters("k-last", 0));
  ASSERT_TRUE(last.ok()) << last.status();
  acknowledged.emplace_back(last->name(), last->version());

  for (const auto& [name, version] : acknowledged) {
    ASSERT_TRUE(collector.AwaitChange(name, version)) << name << " version " << version << " never came";
  }
  const auto versions = collector.versions();
  for (const auto& [name, version] : acknowledged) EXPECT_EQ(versions.at(name).at(version), 1) << name;
  const std::vector<uint64_t> sequences = collector.sequences();
  ASSERT_FALSE(sequences.empty());
  for (size_t i = 0; i < sequences.size(); ++i) ASSERT_EQ(sequences[i], i + 1) << "at " << i;
  EXPECT_EQ(collector.watch().duplicates_dropped(), 0);  // the server never repeated one either
  EXPECT_GE(collector.watch().reconnects(), kCycles);
  ASSERT_FALSE(reconnect_reasons.empty());
  EXPECT_THAT(reconnect_reasons[0], HasSubstr("UNAVAILABLE"));
}

// A consumer that stops reading: once flow control has held the server's
// sends back for its stall timeout, the server ends the stream (first
// RESOURCE_EXHAUSTED with the sequence to resume after; CANCELLED if even
// that is not taken). The watcher resumes and the consumer still gets every
// change once, in order. The resources make the stream big enough to fill
// the transport's buffers.
TEST(WatchTest, AConsumerThatStopsReadingIsResumedWithoutAGap) {
  TempDir dir;
  auto server = ServerProcess::Start(dir.path() + "/data", {"--watch_stall_timeout=1s"});
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<std::string> reasons;
  client::WatchOptions o = Options();
  o.start_after = 0;
  o.include_resource = true;
  o.on_retry = [&](const absl::Status& why, absl::Duration) { reasons.push_back(why.ToString()); };
  auto watch = (*server)->NewClient()->WatchChanges(o);
  auto writer = (*server)->NewClient();
  const std::string long_text(8 * 1024, 'x');
  std::vector<std::string> written, names;
  std::vector<uint64_t> sequences;
  for (int i = 0; i < 1000; ++i) {
    v1::CreateWhatMattersRequest req = NewWhatMatters("slow-1", i);
    req.mutable_what_matters()->set_statement(absl::StrCat(i, " ", long_text));
    auto r = writer->CreateWhatMatters(req);
    ASSERT_TRUE(r.ok()) << r.status();
    written.push_back(r->name());
    if (i == 0) {  // the stream is open and delivering; from now on nothing is read
      std::optional<v1::ChangeEvent> first = NextChange(*watch);
      ASSERT_TRUE(first.has_value());
      sequences.push_back(first->sequence());
      names.push_back(first->name());
    }
  }
  // Not reading for well over the stall timeout.
  absl::SleepFor(absl::Seconds(3));
  while (names.size() < written.size()) {
    std::optional<v1::ChangeEvent> c = NextChange(*watch);
    ASSERT_TRUE(c.has_value());
    sequences.push_back(c->sequence());
    names.push_back(c->name());
  }
  EXPECT_EQ(names, written);
  for (size_t i = 0; i < sequences.size(); ++i) ASSERT_EQ(sequences[i], i + 1) << "at " << i;
  EXPECT_GE(watch->reconnects(), 1);
  ASSERT_FALSE(reasons.empty());
  EXPECT_THAT(reasons[0], ::testing::AnyOf(HasSubstr("RESOURCE_EXHAUSTED"), HasSubstr("CANCELLED")));
  EXPECT_EQ(watch->duplicates_dropped(), 0);
}

// A watch with include_summary: the summary first, then the changes after
// it, and a restart in between does not bring the summary again.
TEST(WatchTest, SummaryFirstThenChangesAcrossARestart) {
  TempDir dir;
  const std::string data = dir.path() + "/data";
  auto server = ServerProcess::Start(data);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string target = (*server)->target();
  auto before = (*server)->NewClient()->CreateWhatMatters(NewWhatMatters("s1", 1));
  ASSERT_TRUE(before.ok()) << before.status();

  client::WatchOptions o = Options();
  o.parent = "patients/s1";
  o.include_summary = true;
  auto watch = (*server)->NewClient()->WatchChanges(o);
  absl::StatusOr<v1::WatchChangesResponse> first = watch->Next(kHung);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(first->has_summary());
  ASSERT_EQ(first->summary().summary().what_matters_size(), 1);
  EXPECT_EQ(first->summary().summary().what_matters(0).name(), before->name());
  EXPECT_EQ(watch->position(), first->summary().after_sequence());

  (*server)->Kill();
  auto again = ServerProcess::Start(data, {"--grpc_listen=" + target});
  ASSERT_TRUE(again.ok()) << again.status();
  auto after = (*again)->NewClient()->CreateWhatMatters(NewWhatMatters("s1", 2));
  ASSERT_TRUE(after.ok()) << after.status();
  for (;;) {
    absl::StatusOr<v1::WatchChangesResponse> m = watch->Next(kHung);
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_FALSE(m->has_summary());
    if (!m->has_change()) continue;
    EXPECT_EQ(m->change().name(), after->name());  // not the one the summary showed
    break;
  }
  EXPECT_GE(watch->reconnects(), 1);
}

}  // namespace
}  // namespace wmty::testing
