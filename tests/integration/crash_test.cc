// Crash safety of the real wmtyd on both faces: 8 gRPC client threads create
// and update goals and what-matters entries, and 4 FHIR client threads (raw
// HTTP/1.1 on kept-alive connections) POST Goals and what-matters
// Observations and PUT updates with If-Match, all with request ids, while the
// server is killed with SIGKILL at a random moment, several times over on the
// same data dir. After every restart:
//   - every gRPC write the server acknowledged reads back unchanged (latest
//     via Get, older versions via List*Versions), histories are gapless;
//   - every FHIR write acknowledged with 201/200 reads back at its version
//     (GET .../_history/<vid>) byte-identical to the acknowledged response,
//     with the text and status that were sent, and every version up to the
//     current one exists (no gap);
//   - writes whose outcome was unknown are retried with the same request_id /
//     X-Request-Id (and the same If-Match for an update) and must give one
//     result, never a second record; the last acknowledged FHIR creates are
//     replayed too and must return the first result;
//   - the database passes Store::VerifyIntegrity (indexes, versions, the
//     change log and request outcomes agree: no half-applied write).
// At the end each patient holds exactly the resources its writer created.
//
// WMTY_CRASH_CYCLES sets the number of kill cycles (default 6).
#include <sys/wait.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
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
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "fhir/http_client.h"
#include "integration/integration_util.h"
#include "storage/store.h"
#include "support/test_support.h"

namespace wmty::testing {
namespace {

constexpr int kWriters = 8;
constexpr int kFhirWriters = 4;
// Acknowledged FHIR creates replayed (same X-Request-Id) after each restart, per writer.
constexpr int kReplayedCreates = 3;
constexpr int kDefaultCycles = 6;
using Code = absl::StatusCode;

int Cycles() {
  int cycles = kDefaultCycles;
  if (const char* env = std::getenv("WMTY_CRASH_CYCLES")) {
    if (!absl::SimpleAtoi(env, &cycles) || cycles < 1) cycles = kDefaultCycles;
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

// ---------------------------------------------------------------- the FHIR face

constexpr absl::string_view kXProvenance =
    R"({"resourceType":"Provenance","agent":[{"type":{"coding":[{"system":)"
    R"("http://terminology.hl7.org/CodeSystem/provenance-participant-type","code":"author"}]},)"
    R"("who":{"reference":"Practitioner/rn-17","display":"Ana Ruiz"},"role":[{"text":"RN"}]}]})";

// One FHIR write as sent: kept so that a write whose outcome is unknown can be
// sent again byte for byte (same X-Request-Id, same If-Match).
struct FhirWrite {
  std::string method;  // POST or PUT
  std::string target;  // "/fhir/Goal" or "/fhir/Goal/<id>"
  std::string type;    // Goal or Observation (a what-matters answer)
  std::string body;
  std::string request_id;
  int64_t if_match = 0;  // PUT: the version it replaces
  // What the stored version must say: Goal.description.text or
  // Observation.valueString, and Goal.lifecycleStatus.
  std::string text;
  std::string lifecycle;
  HeaderList Headers() const {
    HeaderList h = {{"X-Request-Id", request_id}, {"X-Provenance", std::string(kXProvenance)}};
    if (method == "PUT") h.emplace_back("If-Match", absl::StrCat("W/\"", if_match, "\""));
    return h;
  }
};

std::string FhirBody(absl::string_view type, absl::string_view patient, absl::string_view id, absl::string_view text,
                     absl::string_view lifecycle) {
  const std::string id_member = id.empty() ? "" : absl::StrCat(R"("id":")", id, R"(",)");
  if (type == "Goal") {
    return absl::StrCat(R"({"resourceType":"Goal",)", id_member, R"("lifecycleStatus":")", lifecycle,
                        R"(","description":{"text":")", text, R"("},"subject":{"reference":"Patient/)", patient,
                        R"("},"expressedBy":{"reference":"Patient/)", patient,
                        R"("},"target":[{"dueDate":"2027-06-15"}],"category":[{"coding":[{"system":)"
                        R"("http://loinc.org","code":"87528-6"}]}]})");
  }
  return absl::StrCat(R"({"resourceType":"Observation",)", id_member,
                      R"("status":"final","code":{"coding":[{"system":"http://loinc.org","code":"95541-9"},)"
                      R"({"system":"https://fhir.wmty.health/CodeSystem/wmty","code":"what-matters"}]},)"
                      R"("subject":{"reference":"Patient/)",
                      patient, R"("},"performer":[{"reference":"Patient/)", patient, R"("}],"valueString":")", text,
                      R"("})");
}

// "W/\"7\"" -> 7; 0 if malformed.
int64_t EtagVersion(absl::string_view etag) {
  int64_t v = 0;
  if (!absl::ConsumePrefix(&etag, "W/\"") || !absl::ConsumeSuffix(&etag, "\"") || !absl::SimpleAtoi(etag, &v)) return 0;
  return v;
}

std::string JsonString(const rapidjson::Value& v, absl::string_view member) {
  if (!v.IsObject()) return "";
  auto m = v.FindMember(rapidjson::Value(member.data(), static_cast<rapidjson::SizeType>(member.size())));
  return m != v.MemberEnd() && m->value.IsString() ? std::string(m->value.GetString(), m->value.GetStringLength()) : "";
}

// Does a stored FHIR resource say what `write` sent (for the elements we model)?
std::string MismatchWith(const FhirWrite& write, const HttpResponse& r) {
  const rapidjson::Document d = r.Json();
  if (!d.IsObject()) return "not a JSON object";
  if (JsonString(d, "resourceType") != write.type) return "resourceType " + JsonString(d, "resourceType");
  std::string text;
  if (write.type == "Goal") {
    auto desc = d.FindMember("description");
    if (desc != d.MemberEnd()) text = JsonString(desc->value, "text");
    if (JsonString(d, "lifecycleStatus") != write.lifecycle)
      return "lifecycleStatus " + JsonString(d, "lifecycleStatus");
  } else {
    text = JsonString(d, "valueString");
  }
  if (text != write.text) return absl::StrCat("text \"", text, "\", sent \"", write.text, "\"");
  return "";
}

// Acknowledged FHIR versions: "Goal/<id>" -> version -> (the write, the body
// of the 201/200 response).
class FhirModel {
 public:
  struct Acked {
    FhirWrite write;
    std::string response_body;
  };
  void Ack(const std::string& key, int64_t version, FhirWrite write, std::string body) {
    std::lock_guard<std::mutex> lock(mu_);
    acked_[key][version] = Acked{std::move(write), std::move(body)};
  }
  std::map<std::string, std::map<int64_t, Acked>> Copy() const {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::map<int64_t, Acked>> acked_;
};

// What one FHIR writer thread knows, kept across cycles.
struct FhirWriter {
  struct Owned {
    std::string type;
    std::string id;
    int64_t version = 0;  // the last acknowledged version
    // An update's outcome is unknown: no further update until it has been
    // resent after the restart.
    bool doubtful = false;
  };
  std::string patient;
  std::vector<Owned> owned;
  // Writes whose outcome is unknown, with the index into `owned` for updates.
  std::vector<std::pair<FhirWrite, size_t>> doubtful;
  // The last acknowledged creates (with their ids), replayed after a restart.
  std::vector<std::pair<FhirWrite, std::string>> recent_creates;
  int counter = 0;
  std::mt19937 rng;
};

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
    ExpectExactlyResources(client, w.parent, known);
  }

  // The goals and what-matters entries of `parent` are exactly `known` (names).
  void ExpectExactlyResources(client::Client& client, const std::string& parent, const std::set<std::string>& known) {
    std::set<std::string> listed;
    std::string token;
    do {
      v1::ListGoalsRequest req;
      req.set_parent(parent);
      req.set_page_size(1000);
      req.set_page_token(token);
      auto page = client.ListGoals(req);
      ASSERT_TRUE(page.ok()) << page.status();
      for (const auto& g : page->goals()) listed.insert(g.name());
      token = page->next_page_token();
    } while (!token.empty());
    do {
      v1::ListWhatMattersRequest req;
      req.set_parent(parent);
      req.set_page_size(1000);
      req.set_page_token(token);
      auto page = client.ListWhatMatters(req);
      ASSERT_TRUE(page.ok()) << page.status();
      for (const auto& m : page->what_matters()) listed.insert(m.name());
      token = page->next_page_token();
    } while (!token.empty());
    EXPECT_EQ(listed, known) << parent << ": stored resources differ from those the writer created";
  }

  // ------------------------------------------------------------ FHIR writers

  // One FHIR writer's loop until `stop`: POST Goals and what-matters
  // Observations, PUT updates with If-Match, each with a fresh X-Request-Id,
  // on one kept-alive connection.
  void FhirWriteUntil(FhirWriter& w, int http_port, const std::atomic<bool>& stop) {
    HttpClient http(http_port);
    while (!stop.load()) {
      std::vector<size_t> updatable;
      for (size_t i = 0; i < w.owned.size(); ++i) {
        if (!w.owned[i].doubtful) updatable.push_back(i);
      }
      const bool create = updatable.size() < 2 || std::uniform_int_distribution<int>(0, 9)(w.rng) < 4;
      const int n = w.counter++;
      FhirWrite write;
      size_t index = 0;
      std::string id;
      if (create) {
        write.type = n % 2 == 0 ? "Goal" : "Observation";
        write.method = "POST";
        write.target = "/fhir/" + write.type;
      } else {
        index = updatable[std::uniform_int_distribution<size_t>(0, updatable.size() - 1)(w.rng)];
        const FhirWriter::Owned& o = w.owned[index];
        id = o.id;
        write.type = o.type;
        write.method = "PUT";
        write.target = absl::StrCat("/fhir/", o.type, "/", o.id);
        write.if_match = o.version;
      }
      // Non-ASCII on purpose: the bytes must come back exactly.
      write.text = absl::StrCat("fhir writer ", w.patient, create ? " entry " : " revision ", n, " caf\xc3\xa9");
      if (write.type == "Goal") write.lifecycle = n % 3 == 0 ? "on-hold" : "active";
      write.body = FhirBody(write.type, w.patient, id, write.text, write.lifecycle);
      write.request_id = client::NewRequestId();
      auto r = http.Send(write.method, write.target, write.body, WithContentType(write.Headers()));
      if (!r.ok()) {
        // The server died under it (or before it): the outcome is unknown.
        // Stop until the restart (the only cause here is the kill; spinning
        // on refused connections would only pile up writes never sent).
        if (!create) w.owned[index].doubtful = true;
        w.doubtful.emplace_back(std::move(write), index);
        break;
      }
      if (r->status != (create ? 201 : 200)) {
        ADD_FAILURE() << write.method << " " << write.target << " refused: " << r->Describe();
        continue;
      }
      const int64_t version = EtagVersion(r->Header("etag"));
      EXPECT_EQ(version, create ? 1 : write.if_match + 1) << write.target << " " << r->Header("etag");
      EXPECT_EQ(MismatchWith(write, *r), "") << write.target;
      if (create) {
        id = JsonString(r->Json(), "id");
        ASSERT_FALSE(id.empty()) << r->Describe();
        w.owned.push_back({write.type, id, version, false});
        w.recent_creates.emplace_back(write, id);
        if (w.recent_creates.size() > kReplayedCreates) w.recent_creates.erase(w.recent_creates.begin());
      } else {
        w.owned[index].version = version;
      }
      const std::string key = absl::StrCat(write.type, "/", id);  // before `write` is moved
      fhir_model_.Ack(key, version, std::move(write), std::move(r->body));
    }
  }

  static HeaderList WithContentType(HeaderList headers) {
    headers.emplace_back("Content-Type", "application/fhir+json");
    return headers;
  }

  // Sends every FHIR write whose outcome was unknown again, byte for byte: it
  // must give one result (the first one, or the write made now), and sending
  // it a third time must give the same result again, not a second record.
  void RetryFhirDoubtful(HttpClient& http, FhirWriter& w) {
    for (auto& [write, index] : w.doubtful) {
      const bool create = write.method == "POST";
      auto r = http.Send(write.method, write.target, write.body, WithContentType(write.Headers()));
      ASSERT_TRUE(r.ok()) << "retry of " << write.target << ": " << r.status();
      ASSERT_EQ(r->status, create ? 201 : 200)
          << "retry of " << write.method << " " << write.target << ": " << r->Describe();
      const int64_t version = EtagVersion(r->Header("etag"));
      EXPECT_EQ(version, create ? 1 : write.if_match + 1) << write.target;
      EXPECT_EQ(MismatchWith(write, *r), "") << "retry of " << write.target;
      const std::string id = create ? JsonString(r->Json(), "id") : w.owned[index].id;
      ASSERT_FALSE(id.empty()) << r->Describe();
      auto again = http.Send(write.method, write.target, write.body, WithContentType(write.Headers()));
      ASSERT_TRUE(again.ok()) << again.status();
      EXPECT_EQ(again->status, r->status) << again->Describe();
      EXPECT_EQ(again->body, r->body) << "a second retry of " << write.target << " gave another result";
      if (create) {
        w.owned.push_back({write.type, id, version, false});
      } else {
        w.owned[index].version = version;
        w.owned[index].doubtful = false;
      }
      fhir_model_.Ack(absl::StrCat(write.type, "/", id), version, write, std::move(r->body));
      ++fhir_retried_;
    }
    w.doubtful.clear();
  }

  // The last acknowledged creates before the crash, sent again with their
  // X-Request-Id: the first result comes back (same id, version 1, same
  // body), no second record.
  void ReplayRecentCreates(HttpClient& http, FhirWriter& w, const std::string& when) {
    const auto acked = fhir_model_.Copy();
    for (const auto& [write, id] : w.recent_creates) {
      auto r = http.Send(write.method, write.target, write.body, WithContentType(write.Headers()));
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_EQ(r->status, 201) << when << ": replay of a create: " << r->Describe();
      EXPECT_EQ(JsonString(r->Json(), "id"), id) << when << ": a replayed create made another record";
      EXPECT_EQ(EtagVersion(r->Header("etag")), 1);
      const auto& first = acked.at(absl::StrCat(write.type, "/", id)).at(1);
      EXPECT_EQ(r->body, first.response_body) << when << ": a replayed create answered differently";
    }
    w.recent_creates.clear();
  }

  // Every acknowledged FHIR version reads back (vread) byte-identical to the
  // acknowledged response and saying what was sent; every version up to the
  // current one exists.
  void VerifyFhirAcknowledged(HttpClient& http, const std::string& when) {
    int checked = 0;
    for (const auto& [key, versions] : fhir_model_.Copy()) {
      const HttpResponse current = http.Get("/fhir/" + key);
      ASSERT_EQ(current.status, 200) << when << ": " << key << ": " << current.Describe();
      const int64_t current_version = EtagVersion(current.Header("etag"));
      const auto& [last_version, last] = *versions.rbegin();
      ASSERT_GE(current_version, last_version) << when << ": " << key << " lost acknowledged versions";
      if (current_version == last_version) {
        EXPECT_EQ(current.body, last.response_body) << when << ": " << key << " v" << last_version << " changed";
      }
      for (int64_t v = 1; v <= current_version; ++v) {
        const HttpResponse r = http.Get(absl::StrCat("/fhir/", key, "/_history/", v));
        ASSERT_EQ(r.status, 200) << when << ": " << key << " has no version " << v << " of " << current_version << ": "
                                 << r.Describe();
        auto it = versions.find(v);
        if (it == versions.end()) continue;
        EXPECT_EQ(r.body, it->second.response_body) << when << ": " << key << " v" << v << " changed";
        EXPECT_EQ(MismatchWith(it->second.write, r), "") << when << ": " << key << " v" << v;
        ++checked;
      }
    }
    fhir_checked_ = checked;
  }

  static std::set<std::string> NamesOf(const FhirWriter& w) {
    std::set<std::string> names;
    for (const auto& o : w.owned) {
      names.insert(absl::StrCat("patients/", w.patient, o.type == "Goal" ? "/goals/" : "/whatMatters/", o.id));
    }
    EXPECT_EQ(names.size(), w.owned.size()) << w.patient << ": a resource was learned of twice";
    return names;
  }

  int FhirAcked() const {
    int n = 0;
    for (const auto& [key, versions] : fhir_model_.Copy()) n += static_cast<int>(versions.size());
    return n;
  }

  TempDir dir_;
  Model model_;
  FhirModel fhir_model_;
  int total_checked_ = 0;
  int fhir_checked_ = 0;
  int retried_ = 0;       // gRPC creates retried after a crash
  int fhir_retried_ = 0;  // FHIR writes resent after a crash
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
  std::vector<FhirWriter> fhir_writers(kFhirWriters);
  for (int t = 0; t < kFhirWriters; ++t) {
    fhir_writers[t].patient = absl::StrCat("fhir-crash-", t);
    fhir_writers[t].rng.seed(seed + 1000 + t);
  }

  // After a restart: everything acknowledged is there, unknown outcomes are
  // settled by resending, and the last creates replay their first result.
  auto check_and_settle = [&](const ServerProcess& server, const std::string& when) {
    auto client = server.NewClient(absl::Seconds(10));
    ASSERT_NO_FATAL_FAILURE(VerifyAcknowledged(*client, when));
    for (auto& w : writers) ASSERT_NO_FATAL_FAILURE(RetryDoubtful(*client, w));
    HttpClient http(server.http_port());
    ASSERT_NO_FATAL_FAILURE(VerifyFhirAcknowledged(http, when));
    for (auto& w : fhir_writers) {
      ASSERT_NO_FATAL_FAILURE(RetryFhirDoubtful(http, w));
      ASSERT_NO_FATAL_FAILURE(ReplayRecentCreates(http, w, when));
    }
  };

  int total_acked_before = 0;
  int fhir_acked_before = 0;
  for (int cycle = 0; cycle < cycles; ++cycle) {
    const std::string when = absl::StrCat("cycle ", cycle);
    auto server = StartServer();
    ASSERT_NE(server, nullptr);
    ASSERT_NO_FATAL_FAILURE(check_and_settle(*server, "after restart, " + when));

    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (auto& w : writers) threads.emplace_back([&, wp = &w] { WriteUntil(*wp, *server, stop); });
    for (auto& w : fhir_writers) {
      threads.emplace_back([&, wp = &w] { FhirWriteUntil(*wp, server->http_port(), stop); });
    }
    const int kill_after_ms = std::uniform_int_distribution<int>(200, 800)(rng);
    absl::SleepFor(absl::Milliseconds(kill_after_ms));
    server->Kill();
    stop.store(true);
    for (auto& t : threads) t.join();

    int acked = 0;
    for (const auto& [name, versions] : model_.Copy()) acked += static_cast<int>(versions.size());
    const int fhir_acked = FhirAcked();
    std::cout << when << ": killed after " << kill_after_ms
              << " ms; acknowledged in this cycle: " << acked - total_acked_before << " gRPC, "
              << fhir_acked - fhir_acked_before << " FHIR writes; in all: " << acked << " gRPC, " << fhir_acked
              << " FHIR; resent so far: " << retried_ << " gRPC creates, " << fhir_retried_ << " FHIR writes"
              << std::endl;
    total_acked_before = acked;
    fhir_acked_before = fhir_acked;
    ASSERT_NO_FATAL_FAILURE(VerifyStoreIntegrity("after kill, " + when));
  }

  // Final round: everything acknowledged is there, nothing was created twice,
  // and a clean stop leaves a consistent database.
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  ASSERT_NO_FATAL_FAILURE(check_and_settle(*server, "final"));
  {
    auto client = server->NewClient(absl::Seconds(10));
    ASSERT_NO_FATAL_FAILURE(VerifyAcknowledged(*client, "final, after retries"));
    HttpClient http(server->http_port());
    ASSERT_NO_FATAL_FAILURE(VerifyFhirAcknowledged(http, "final, after retries"));
    for (const auto& w : writers) ASSERT_NO_FATAL_FAILURE(ExpectExactlyKnownResources(*client, w));
    for (const auto& w : fhir_writers) {
      ASSERT_NO_FATAL_FAILURE(ExpectExactlyResources(*client, "patients/" + w.patient, NamesOf(w)));
    }
  }
  EXPECT_GT(total_acked_before, 0) << "no gRPC write was acknowledged: the test proved nothing";
  EXPECT_GT(fhir_acked_before, 0) << "no FHIR write was acknowledged: the test proved nothing";
  EXPECT_GT(total_checked_, 0);
  EXPECT_GT(fhir_checked_, 0);
  const int status = server->Terminate();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
  ASSERT_NO_FATAL_FAILURE(VerifyStoreIntegrity("after clean stop"));
}

}  // namespace
}  // namespace wmty::testing
