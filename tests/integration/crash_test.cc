// Crash safety of the real wmtyd: 8 client threads create and update goals
// and what-matters entries while the server is killed with SIGKILL at a
// random moment, several times over on the same data dir. Every write the
// server acknowledged must survive each crash unchanged (latest via Get,
// older versions via List*Versions); writes whose outcome was unknown are
// retried with the same request_id after the restart and must never be
// applied twice; and the database must pass Store::VerifyIntegrity after
// every crash and at the end.
//
// WMTY_CRASH_CYCLES sets the number of kill cycles (default 3).
#include <sys/wait.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "integration/integration_util.h"
#include "storage/store.h"
#include "support/test_support.h"

namespace wmty::testing {
namespace {

constexpr int kWriters = 8;
using Code = absl::StatusCode;

int Cycles() {
  int cycles = 3;
  if (const char* env = std::getenv("WMTY_CRASH_CYCLES")) {
    if (!absl::SimpleAtoi(env, &cycles) || cycles < 1) cycles = 3;
  }
  return cycles;
}

bool IsGoal(const std::string& name) { return name.find("/goals/") != std::string::npos; }

// Acknowledged versions of every resource: name -> version -> bytes of the
// resource the server returned.
class Model {
 public:
  void Ack(const std::string& name, int64_t version, std::string bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    acked_[name][version] = std::move(bytes);
  }
  std::map<std::string, std::map<int64_t, std::string>> Copy() const {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::map<int64_t, std::string>> acked_;
};

// What one writer thread knows, kept across cycles.
struct Writer {
  struct Owned {
    v1::Goal goal;       // set when the resource is a goal
    v1::WhatMatters wm;  // otherwise
    bool is_goal = false;
    bool stale = false;  // the last change's outcome is unknown: re-read first
    std::string name() const { return is_goal ? goal.name() : wm.name(); }
  };
  std::string parent;
  std::vector<Owned> owned;
  // Creates whose outcome is unknown (the server died under them).
  std::vector<v1::CreateGoalRequest> doubtful_goals;
  std::vector<v1::CreateWhatMattersRequest> doubtful_wms;
  int counter = 0;
  std::mt19937 rng;
};

// Codes that mean the request was refused for what it is: never expected here.
bool IsRefusal(Code code) {
  return code == Code::kInvalidArgument || code == Code::kAlreadyExists || code == Code::kNotFound ||
         code == Code::kFailedPrecondition;
}

class CrashTest : public ::testing::Test {
 protected:
  std::string data_dir() const { return dir_.path() + "/data"; }

  std::unique_ptr<ServerProcess> StartServer() {
    auto server = ServerProcess::Start(data_dir());
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? std::move(*server) : nullptr;
  }

  // Opens the database directly (no server running) and checks it.
  void VerifyStoreIntegrity(const std::string& when) {
    storage::StoreOptions options;
    options.path = data_dir();
    options.block_cache_bytes = size_t{8} << 20;
    auto store = storage::Store::Open(options);
    ASSERT_TRUE(store.ok()) << when << ": " << store.status();
    EXPECT_TRUE((*store)->VerifyIntegrity().ok()) << when << ": " << (*store)->VerifyIntegrity();
    (*store)->Close();
  }

  // One writer's loop: creates and full updates until `stop`.
  void WriteUntil(Writer& w, const ServerProcess& server, const std::atomic<bool>& stop) {
    auto client = server.NewClient(absl::Seconds(3));
    while (!stop.load()) {
      const bool create = w.owned.size() < 3 || std::uniform_int_distribution<int>(0, 9)(w.rng) < 4;
      if (create) {
        const bool goal = w.counter % 2 == 0;
        const std::string text = absl::StrCat("writer ", w.parent, " entry ", w.counter++);
        Writer::Owned owned;
        owned.is_goal = goal;
        absl::Status status;
        if (goal) {
          v1::CreateGoalRequest req;
          req.set_parent(w.parent);
          *req.mutable_goal() = ValidGoal(text);
          req.set_request_id(client::NewRequestId());
          auto r = client->CreateGoal(req);
          status = r.status();
          if (r.ok()) owned.goal = *r;
          if (!r.ok() && !IsRefusal(status.code())) w.doubtful_goals.push_back(req);
        } else {
          v1::CreateWhatMattersRequest req;
          req.set_parent(w.parent);
          *req.mutable_what_matters() = ValidWhatMatters(text);
          req.set_request_id(client::NewRequestId());
          auto r = client->CreateWhatMatters(req);
          status = r.status();
          if (r.ok()) owned.wm = *r;
          if (!r.ok() && !IsRefusal(status.code())) w.doubtful_wms.push_back(req);
        }
        if (status.ok()) {
          Ack(owned);
          w.owned.push_back(std::move(owned));
        } else if (IsRefusal(status.code())) {
          ADD_FAILURE() << "create refused: " << status;
        }
        continue;
      }

      Writer::Owned& o = w.owned[std::uniform_int_distribution<size_t>(0, w.owned.size() - 1)(w.rng)];
      if (o.stale && !Refresh(*client, o)) continue;
      const std::string text = absl::StrCat("writer ", w.parent, " revision ", w.counter++);
      absl::Status status;
      if (o.is_goal) {
        v1::UpdateGoalRequest req;
        *req.mutable_goal() = o.goal;
        req.mutable_goal()->set_description(text);
        req.mutable_goal()->set_lifecycle_status(w.counter % 3 == 0 ? v1::ON_HOLD : v1::GOAL_ACTIVE);
        auto r = client->UpdateGoal(req);
        status = r.status();
        if (r.ok()) o.goal = *r;
      } else {
        v1::UpdateWhatMattersRequest req;
        *req.mutable_what_matters() = o.wm;
        req.mutable_what_matters()->set_statement(text);
        auto r = client->UpdateWhatMatters(req);
        status = r.status();
        if (r.ok()) o.wm = *r;
      }
      if (status.ok()) {
        Ack(o);
      } else if (IsRefusal(status.code())) {
        ADD_FAILURE() << "update of " << o.name() << " refused: " << status;
      } else {
        // Unknown outcome (server gone) or ABORTED (an earlier change whose
        // answer was lost did land): read the current version before the next update.
        o.stale = true;
      }
    }
  }

  bool Refresh(client::Client& client, Writer::Owned& o) {
    v1::GetResourceRequest get;
    get.set_name(o.name());
    absl::Status status;
    if (o.is_goal) {
      auto r = client.GetGoal(get);
      status = r.status();
      if (r.ok()) o.goal = *r;
    } else {
      auto r = client.GetWhatMatters(get);
      status = r.status();
      if (r.ok()) o.wm = *r;
    }
    if (status.ok()) o.stale = false;
    return status.ok();
  }

  void Ack(const Writer::Owned& o) {
    if (o.is_goal) {
      model_.Ack(o.goal.name(), o.goal.version(), Bytes(o.goal));
    } else {
      model_.Ack(o.wm.name(), o.wm.version(), Bytes(o.wm));
    }
  }

  // Every acknowledged version reads back unchanged; histories are gapless.
  void VerifyAcknowledged(client::Client& client, const std::string& when) {
    const auto acked = model_.Copy();
    int checked = 0;
    for (const auto& [name, versions] : acked) {
      v1::GetResourceRequest get;
      get.set_name(name);
      v1::ListVersionsRequest list;
      list.set_name(name);
      list.set_page_size(1000);
      std::vector<std::pair<int64_t, std::string>> history;  // (version, bytes)
      int64_t current_version = 0;
      std::string current_bytes;
      if (IsGoal(name)) {
        auto current = client.GetGoal(get);
        ASSERT_TRUE(current.ok()) << when << ": " << name << ": " << current.status();
        current_version = current->version();
        current_bytes = Bytes(*current);
        auto all = client.ListGoalVersions(list);
        ASSERT_TRUE(all.ok()) << when << ": " << name << ": " << all.status();
        for (const auto& g : all->goals()) history.emplace_back(g.version(), Bytes(g));
      } else {
        auto current = client.GetWhatMatters(get);
        ASSERT_TRUE(current.ok()) << when << ": " << name << ": " << current.status();
        current_version = current->version();
        current_bytes = Bytes(*current);
        auto all = client.ListWhatMattersVersions(list);
        ASSERT_TRUE(all.ok()) << when << ": " << name << ": " << all.status();
        for (const auto& w : all->what_matters()) history.emplace_back(w.version(), Bytes(w));
      }
      const auto& [last_version, last_bytes] = *versions.rbegin();
      ASSERT_GE(current_version, last_version) << when << ": " << name << " lost acknowledged versions";
      if (current_version == last_version) {
        EXPECT_EQ(current_bytes, last_bytes) << when << ": " << name << " v" << last_version << " changed";
      }
      ASSERT_EQ(history.size(), static_cast<size_t>(current_version)) << when << ": " << name;
      for (size_t i = 0; i < history.size(); ++i) {
        ASSERT_EQ(history[i].first, static_cast<int64_t>(i + 1)) << when << ": " << name << " history has a gap";
      }
      EXPECT_EQ(history.back().second, current_bytes) << when << ": " << name;
      for (const auto& [version, bytes] : versions) {
        EXPECT_EQ(history[version - 1].second, bytes) << when << ": " << name << " v" << version << " changed";
        ++checked;
      }
    }
    total_checked_ = checked;
  }

  // Retries every create whose outcome was unknown, with its request_id: the
  // first result comes back (or it is created now), never a second copy.
  void RetryDoubtful(client::Client& client, Writer& w) {
    retried_ += static_cast<int>(w.doubtful_goals.size() + w.doubtful_wms.size());
    for (const auto& req : w.doubtful_goals) {
      auto r = client.CreateGoal(req);
      ASSERT_TRUE(r.ok()) << "retry of " << req.request_id() << ": " << r.status();
      EXPECT_EQ(r->version(), 1);
      EXPECT_EQ(r->description(), req.goal().description());
      Writer::Owned o;
      o.is_goal = true;
      o.goal = *r;
      Ack(o);
      w.owned.push_back(std::move(o));
    }
    for (const auto& req : w.doubtful_wms) {
      auto r = client.CreateWhatMatters(req);
      ASSERT_TRUE(r.ok()) << "retry of " << req.request_id() << ": " << r.status();
      EXPECT_EQ(r->version(), 1);
      EXPECT_EQ(r->statement(), req.what_matters().statement());
      Writer::Owned o;
      o.wm = *r;
      Ack(o);
      w.owned.push_back(std::move(o));
    }
    w.doubtful_goals.clear();
    w.doubtful_wms.clear();
  }

  // No create was applied twice: the patient holds exactly the resources the
  // writer created (acknowledged, or learned of by retrying), no extra copies.
  void ExpectExactlyKnownResources(client::Client& client, const Writer& w) {
    std::set<std::string> known;
    for (const auto& o : w.owned) known.insert(o.name());
    EXPECT_EQ(known.size(), w.owned.size()) << w.parent << ": a resource was learned of twice";
    std::set<std::string> listed;
    std::string token;
    do {
      v1::ListGoalsRequest req;
      req.set_parent(w.parent);
      req.set_page_size(1000);
      req.set_page_token(token);
      auto page = client.ListGoals(req);
      ASSERT_TRUE(page.ok()) << page.status();
      for (const auto& g : page->goals()) listed.insert(g.name());
      token = page->next_page_token();
    } while (!token.empty());
    do {
      v1::ListWhatMattersRequest req;
      req.set_parent(w.parent);
      req.set_page_size(1000);
      req.set_page_token(token);
      auto page = client.ListWhatMatters(req);
      ASSERT_TRUE(page.ok()) << page.status();
      for (const auto& m : page->what_matters()) listed.insert(m.name());
      token = page->next_page_token();
    } while (!token.empty());
    EXPECT_EQ(listed, known) << w.parent << ": stored resources differ from those the writer created";
  }

  TempDir dir_;
  Model model_;
  int total_checked_ = 0;
  int retried_ = 0;  // creates retried after a crash
};

TEST_F(CrashTest, AcknowledgedWritesSurviveKillNine) {
  const int cycles = Cycles();
  std::random_device seed_source;
  const unsigned seed = seed_source();
  std::mt19937 rng(seed);
  std::cout << "cycles=" << cycles << " seed=" << seed << std::endl;

  std::vector<Writer> writers(kWriters);
  for (int t = 0; t < kWriters; ++t) {
    writers[t].parent = absl::StrCat("patients/crash-", t);
    writers[t].rng.seed(seed + t);
  }

  int total_acked_before = 0;
  for (int cycle = 0; cycle < cycles; ++cycle) {
    const std::string when = absl::StrCat("cycle ", cycle);
    auto server = StartServer();
    ASSERT_NE(server, nullptr);
    {
      auto client = server->NewClient(absl::Seconds(10));
      ASSERT_NO_FATAL_FAILURE(VerifyAcknowledged(*client, "after restart, " + when));
      for (auto& w : writers) ASSERT_NO_FATAL_FAILURE(RetryDoubtful(*client, w));
    }

    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (auto& w : writers) threads.emplace_back([&, wp = &w] { WriteUntil(*wp, *server, stop); });
    const int kill_after_ms = std::uniform_int_distribution<int>(200, 800)(rng);
    absl::SleepFor(absl::Milliseconds(kill_after_ms));
    server->Kill();
    stop.store(true);
    for (auto& t : threads) t.join();

    int acked = 0;
    for (const auto& [name, versions] : model_.Copy()) acked += static_cast<int>(versions.size());
    std::cout << when << ": killed after " << kill_after_ms << " ms, " << acked - total_acked_before
              << " writes acknowledged in this cycle, " << acked << " in all, " << retried_
              << " creates retried so far" << std::endl;
    total_acked_before = acked;
    ASSERT_NO_FATAL_FAILURE(VerifyStoreIntegrity("after kill, " + when));
  }

  // Final round: everything acknowledged is there, nothing was created twice,
  // and a clean stop leaves a consistent database.
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  {
    auto client = server->NewClient(absl::Seconds(10));
    ASSERT_NO_FATAL_FAILURE(VerifyAcknowledged(*client, "final"));
    for (auto& w : writers) ASSERT_NO_FATAL_FAILURE(RetryDoubtful(*client, w));
    ASSERT_NO_FATAL_FAILURE(VerifyAcknowledged(*client, "final, after retries"));
    for (const auto& w : writers) ASSERT_NO_FATAL_FAILURE(ExpectExactlyKnownResources(*client, w));
  }
  EXPECT_GT(total_acked_before, 0) << "no write was acknowledged: the test proved nothing";
  EXPECT_GT(total_checked_, 0);
  const int status = server->Terminate();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
  ASSERT_NO_FATAL_FAILURE(VerifyStoreIntegrity("after clean stop"));
}

}  // namespace
}  // namespace wmty::testing
