// Subscription notifications end to end against the real wmtyd (HS256 key,
// --subscription_allow_private_endpoints, short retries): a Subscription
// created over FHIR gets its handshake and a notification for a Goal written
// over FHIR at a real HTTP receiver (tests/push/receiver.h); $status and
// $events answer what was delivered, to the owner only; bad $events
// parameters are 400.
#include <fstream>
#include <map>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "absl/strings/str_cat.h"
#include "domain/topics.h"
#include "fhir/http_client.h"
#include "push/receiver.h"
#include "support/test_support.h"
#include "support/test_tokens.h"

namespace wmty::testing {
namespace {

using ::testing::HasSubstr;

std::string Sign(TestClaims c) {
  c.fhir_user = "Practitioner/rn-17";
  return SignToken(c, kTestHs256Secret);
}

std::string SubscriptionJson(const std::string& endpoint, const std::string& content) {
  return absl::StrCat(
      R"({"resourceType":"Subscription","status":"requested","reason":"tell the care team","criteria":")",
      domain::kTopicGoalChanged, R"(","channel":{"type":"rest-hook","endpoint":")", endpoint,
      R"(","payload":"application/fhir+json","_payload":{"extension":[{"url":)"
      R"("http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content",)"
      R"("valueCode":")",
      content, R"("}]},"header":["Authorization: Bearer receiver-secret"]}})");
}

std::string GoalJson(const std::string& patient) {
  return absl::StrCat(
      R"({"resourceType":"Goal","lifecycleStatus":"active","description":{"text":"Walk to the garden"},)"
      R"("subject":{"reference":"Patient/)",
      patient, R"("},"expressedBy":{"reference":"Patient/)", patient, R"("},"target":[{"dueDate":"2027-06-15"}]})");
}

const rapidjson::Value* Param(const rapidjson::Value& parameters, absl::string_view name) {
  for (const auto& p : parameters["parameter"].GetArray()) {
    if (absl::string_view(p["name"].GetString()) == name) return &p;
  }
  return nullptr;
}

class FhirSubscriptionDeliveryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    std::vector<std::string> flags = Hs256AuthFlagsIn(dir_->path());
    flags.push_back("--subscription_allow_private_endpoints");
    flags.push_back("--subscription_retry_initial_backoff=20ms");
    flags.push_back("--subscription_retry_max_backoff=100ms");
    auto server = ServerProcess::Start(dir_->path() + "/db", flags);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    http_ = std::make_unique<HttpClient>(server_->http_port());
  }

  // Creates a subscription to `receiver` as `token`; its id.
  std::string Subscribe(const Receiver& receiver, const std::string& token, const std::string& content = "id-only") {
    HttpResponse r = http_->Post("/fhir/Subscription", SubscriptionJson(receiver.url(), content), Bearer(token));
    EXPECT_EQ(r.status, 201) << r.Describe();
    return StringAt(r.Json(), {"id"});
  }

  static inline TempDir* dir_ = nullptr;
  static inline ServerProcess* server_ = nullptr;
  const std::string nurse_ = Sign({"user/*.cruds user/Subscription.cruds", "", "Practitioner/nurse"});
  const std::string other_nurse_ = Sign({"user/*.rs user/Subscription.cruds", "", "Practitioner/other"});
  std::unique_ptr<HttpClient> http_;
};

TEST_F(FhirSubscriptionDeliveryTest, HandshakeEventStatusAndEvents) {
  Receiver receiver;
  const std::string id = Subscribe(receiver, nurse_);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(receiver.WaitFor([](const std::vector<Received>& got) { return !got.empty(); }));
  EXPECT_EQ(receiver.accepted()[0].type, "handshake");
  EXPECT_EQ(receiver.accepted()[0].authorization, "Bearer receiver-secret");

  HttpResponse goal = http_->Post("/fhir/Goal", GoalJson("pd1"), Bearer(nurse_));
  ASSERT_EQ(goal.status, 201) << goal.Describe();
  const std::string goal_id = StringAt(goal.Json(), {"id"});
  ASSERT_TRUE(receiver.WaitFor([](const std::vector<Received>& got) {
    for (const Received& r : got) {
      if (!r.event_numbers.empty()) return true;
    }
    return false;
  }));
  const Received event = receiver.accepted().back();
  EXPECT_EQ(event.type, "event-notification");
  EXPECT_EQ(event.event_numbers, std::vector<uint64_t>({1}));
  ASSERT_EQ(event.focus.size(), 1u);
  EXPECT_THAT(event.focus[0], ::testing::EndsWith(absl::StrCat("/fhir/Goal/", goal_id)));

  // $status: active, one event since the start.
  HttpResponse status = http_->Get(absl::StrCat("/fhir/Subscription/", id, "/$status"), Bearer(nurse_));
  ASSERT_EQ(status.status, 200) << status.Describe();
  rapidjson::Document s = status.Json();
  EXPECT_EQ(StringAt(s, {"type"}), "searchset");
  const rapidjson::Value& parameters = s["entry"][0]["resource"];
  EXPECT_EQ(StringAt(*Param(parameters, "type"), {"valueCode"}), "query-status");
  EXPECT_EQ(StringAt(*Param(parameters, "status"), {"valueCode"}), "active");
  EXPECT_EQ(StringAt(*Param(parameters, "events-since-subscription-start"), {"valueString"}), "1");

  // $events replays event 1 with the resource.
  HttpResponse events = http_->Get(
      absl::StrCat("/fhir/Subscription/", id, "/$events?eventsSinceNumber=1&content=full-resource"), Bearer(nurse_));
  ASSERT_EQ(events.status, 200) << events.Describe();
  rapidjson::Document e = events.Json();
  EXPECT_EQ(StringAt(e, {"type"}), "history");
  EXPECT_EQ(StringAt(*Param(e["entry"][0]["resource"], "type"), {"valueCode"}), "query-event");
  ASSERT_EQ(e["entry"].Size(), 2u);
  EXPECT_EQ(StringAt(e, {"entry", "1", "resource", "resourceType"}), "Goal");
  EXPECT_EQ(StringAt(e, {"entry", "1", "resource", "id"}), goal_id);
  // Past the newest: only the status.
  HttpResponse none =
      http_->Get(absl::StrCat("/fhir/Subscription/", id, "/$events?eventsSinceNumber=2"), Bearer(nurse_));
  ASSERT_EQ(none.status, 200) << none.Describe();
  EXPECT_EQ(none.Json()["entry"].Size(), 1u);
}

TEST_F(FhirSubscriptionDeliveryTest, OnlyWhoMaySeeTheSubscriptionGetsItsStatusAndEvents) {
  Receiver receiver;
  const std::string id = Subscribe(receiver, nurse_);
  for (const char* op : {"$status", "$events"}) {
    const std::string path = absl::StrCat("/fhir/Subscription/", id, "/", op);
    EXPECT_EQ(http_->Get(path).status, 401) << op;
    HttpResponse other = http_->Get(path, Bearer(other_nurse_));
    EXPECT_EQ(other.status, 404) << other.Describe();
    EXPECT_EQ(http_->Get(absl::StrCat("/fhir/Subscription/unknown-id/", op), Bearer(nurse_)).status, 404) << op;
  }
}

TEST_F(FhirSubscriptionDeliveryTest, BadEventsParametersAre400) {
  Receiver receiver;
  const std::string id = Subscribe(receiver, nurse_);
  for (const char* query : {"eventsSinceNumber=abc", "eventsUntilNumber=-1", "content=everything"}) {
    HttpResponse r = http_->Get(absl::StrCat("/fhir/Subscription/", id, "/$events?", query), Bearer(nurse_));
    EXPECT_EQ(r.status, 400) << query << ": " << r.Describe();
    EXPECT_THAT(r.body, HasSubstr("OperationOutcome"));
  }
}

// wmtyd killed with SIGKILL right after acknowledged writes, three times:
// once it settles, every acknowledged write produced exactly its event at the
// receiver, numbered 1..N without gaps; a duplicate (an acknowledgement lost
// in the crash) carries the same number and focus.
TEST(FhirSubscriptionCrashTest, EveryAcknowledgedWriteIsNotifiedAcrossKills) {
  TempDir dir;
  std::vector<std::string> flags = Hs256AuthFlagsIn(dir.path());
  flags.push_back("--subscription_allow_private_endpoints");
  flags.push_back("--subscription_retry_initial_backoff=20ms");
  flags.push_back("--subscription_retry_max_backoff=100ms");
  const std::string nurse = Sign({"user/*.cruds user/Subscription.cruds", "", "Practitioner/nurse"});
  Receiver receiver;
  std::vector<std::string> written;  // Goal ids, in write order
  for (int cycle = 0; cycle < 4; ++cycle) {
    auto server = ServerProcess::Start(dir.path() + "/db", flags);
    ASSERT_TRUE(server.ok()) << server.status();
    HttpClient http((*server)->http_port());
    if (cycle == 0) {
      HttpResponse r = http.Post("/fhir/Subscription", SubscriptionJson(receiver.url(), "id-only"), Bearer(nurse));
      ASSERT_EQ(r.status, 201) << r.Describe();
    }
    if (cycle == 3) {
      // Settles: everything written is delivered.
      ASSERT_TRUE(receiver.WaitFor([&](const std::vector<Received>&) {
        std::set<uint64_t> numbers;
        for (uint64_t n : receiver.EventNumbers()) numbers.insert(n);
        return numbers.size() >= written.size();
      })) << "events received: "
          << receiver.EventNumbers().size() << " of " << written.size();
      (*server)->Terminate();
      break;
    }
    for (int i = 0; i < 5; ++i) {
      HttpResponse goal = http.Post("/fhir/Goal", GoalJson("crash"), Bearer(nurse));
      ASSERT_EQ(goal.status, 201) << goal.Describe();
      written.push_back(StringAt(goal.Json(), {"id"}));
    }
    (*server)->Kill();
  }
  // Number -> focus ("Goal/<id>"; the base URL's port changes per run).
  std::map<uint64_t, std::string> focus_of;
  for (const Received& r : receiver.accepted()) {
    for (size_t i = 0; i < r.event_numbers.size(); ++i) {
      const std::string focus = r.focus[i].substr(r.focus[i].rfind("/Goal/") + 1);
      auto [it, inserted] = focus_of.emplace(r.event_numbers[i], focus);
      EXPECT_EQ(it->second, focus) << "event " << r.event_numbers[i] << " sent twice with different foci";
    }
  }
  ASSERT_EQ(focus_of.size(), written.size());
  uint64_t expected = 1;
  for (const auto& [number, focus] : focus_of) {
    EXPECT_EQ(number, expected) << "a gap in the event numbers";
    EXPECT_EQ(focus, "Goal/" + written[expected - 1]) << "event " << number;
    ++expected;
  }
}

}  // namespace
}  // namespace wmty::testing
