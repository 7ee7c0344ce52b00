// fhir/notification.h: the SubscriptionStatus Parameters and notification
// Bundles (Subscriptions Backport IG 1.1.0 on R4), pure functions: what each
// payload carries, event numbers as strings, and history entries with
// request and response (R4's rules for history Bundles).
#include "fhir/notification.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "support/test_support.h"

namespace wmty::fhir {
namespace {

using storage::Subscription;

NotificationSubject Subject(Subscription::Payload payload) {
  NotificationSubject s;
  s.base_url = "https://wmty.example/fhir";
  s.subscription_id = "sub1";
  s.subscription.set_topic("https://wmty.dev/fhir/SubscriptionTopic/goal-changed");
  s.subscription.set_payload(payload);
  s.subscription.set_status(Subscription::ACTIVE);
  s.events_since_start = 7;
  return s;
}

NotificationEvent GoalEvent(uint64_t number, storage::Change::Op op) {
  NotificationEvent e;
  e.number = number;
  e.change.set_kind(storage::GOAL);
  e.change.set_patient_id("p1");
  e.change.set_id("g1");
  e.change.set_version(2);
  e.change.set_op(op);
  e.change.set_time_micros(1'700'000'000'000'000);
  return e;
}

rapidjson::Document Parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  return d;
}

const rapidjson::Value* Param(const rapidjson::Value& params, const char* name) {
  for (const auto& p : params.GetArray()) {
    if (std::string(p["name"].GetString()) == name) return &p;
  }
  return nullptr;
}

TEST(NotificationTest, EventNotificationIdOnly) {
  auto text = NotificationBundle(Subject(Subscription::ID_ONLY), NotificationType::kEventNotification,
                                 {GoalEvent(6, storage::Change::UPDATE), GoalEvent(7, storage::Change::RETRACT)},
                                 Subscription::ID_ONLY);
  ASSERT_TRUE(text.ok()) << text.status();
  auto d = Parse(*text);
  EXPECT_STREQ(d["resourceType"].GetString(), "Bundle");
  EXPECT_STREQ(d["type"].GetString(), "history");
  ASSERT_EQ(d["entry"].Size(), 3u);
  for (const auto& entry : d["entry"].GetArray()) {
    EXPECT_TRUE(entry.HasMember("request"));
    EXPECT_TRUE(entry.HasMember("response"));
  }
  const auto& status = d["entry"][0]["resource"];
  EXPECT_STREQ(status["resourceType"].GetString(), "Parameters");
  EXPECT_EQ(std::string(status["meta"]["profile"][0].GetString()), kSubscriptionStatusProfile);
  const auto& params = status["parameter"];
  EXPECT_STREQ((*Param(params, "subscription"))["valueReference"]["reference"].GetString(),
               "https://wmty.example/fhir/Subscription/sub1");
  EXPECT_STREQ((*Param(params, "type"))["valueCode"].GetString(), "event-notification");
  EXPECT_STREQ((*Param(params, "status"))["valueCode"].GetString(), "active");
  EXPECT_STREQ((*Param(params, "events-since-subscription-start"))["valueString"].GetString(), "7");
  const auto& event = *Param(params, "notification-event");
  EXPECT_STREQ(event["part"][0]["valueString"].GetString(), "6");
  EXPECT_STREQ(event["part"][2]["valueReference"]["reference"].GetString(), "https://wmty.example/fhir/Goal/g1");
  const auto& update = d["entry"][1];
  EXPECT_STREQ(update["fullUrl"].GetString(), "https://wmty.example/fhir/Goal/g1");
  EXPECT_FALSE(update.HasMember("resource"));
  EXPECT_STREQ(update["request"]["method"].GetString(), "PUT");
  EXPECT_STREQ(d["entry"][2]["request"]["method"].GetString(), "DELETE");
}

TEST(NotificationTest, EmptyPayloadHasOnlyTheStatusAndNoFocus) {
  auto text = NotificationBundle(Subject(Subscription::EMPTY), NotificationType::kEventNotification,
                                 {GoalEvent(7, storage::Change::CREATE)}, Subscription::EMPTY);
  ASSERT_TRUE(text.ok());
  auto d = Parse(*text);
  ASSERT_EQ(d["entry"].Size(), 1u);
  const auto& event = *Param(d["entry"][0]["resource"]["parameter"], "notification-event");
  EXPECT_EQ(event["part"].Size(), 2u);  // event-number and timestamp
}

TEST(NotificationTest, FullResourceCarriesTheVersion) {
  NotificationEvent e = GoalEvent(7, storage::Change::CREATE);
  storage::Record version;
  version.set_kind(storage::GOAL);
  version.set_patient_id("p1");
  version.set_id("g1");
  version.set_version(1);
  version.set_resource(testing::ValidGoal().SerializeAsString());
  e.version = version;
  auto text = NotificationBundle(Subject(Subscription::FULL_RESOURCE), NotificationType::kEventNotification, {e},
                                 Subscription::FULL_RESOURCE);
  ASSERT_TRUE(text.ok()) << text.status();
  auto d = Parse(*text);
  ASSERT_EQ(d["entry"].Size(), 2u);
  EXPECT_STREQ(d["entry"][1]["resource"]["resourceType"].GetString(), "Goal");
  EXPECT_STREQ(d["entry"][1]["resource"]["id"].GetString(), "g1");
  EXPECT_STREQ(d["entry"][1]["request"]["method"].GetString(), "POST");
  EXPECT_STREQ(d["entry"][1]["request"]["url"].GetString(), "Goal");
}

TEST(NotificationTest, HandshakeAndStatusBundle) {
  NotificationSubject subject = Subject(Subscription::ID_ONLY);
  subject.status = Subscription::REQUESTED;
  auto handshake = NotificationBundle(subject, NotificationType::kHandshake, {}, Subscription::ID_ONLY);
  ASSERT_TRUE(handshake.ok());
  auto h = Parse(*handshake);
  EXPECT_STREQ((*Param(h["entry"][0]["resource"]["parameter"], "type"))["valueCode"].GetString(), "handshake");
  EXPECT_STREQ((*Param(h["entry"][0]["resource"]["parameter"], "status"))["valueCode"].GetString(), "requested");

  NotificationSubject failing = Subject(Subscription::ID_ONLY);
  failing.subscription.set_status(Subscription::ERROR);
  failing.error = "the endpoint answered HTTP 503";
  auto s = Parse(StatusBundle({failing}));
  EXPECT_STREQ(s["type"].GetString(), "searchset");
  const auto& params = s["entry"][0]["resource"]["parameter"];
  EXPECT_STREQ((*Param(params, "type"))["valueCode"].GetString(), "query-status");
  EXPECT_STREQ((*Param(params, "status"))["valueCode"].GetString(), "error");
  EXPECT_STREQ((*Param(params, "error"))["valueCodeableConcept"]["text"].GetString(), "the endpoint answered HTTP 503");
}

}  // namespace
}  // namespace wmty::fhir
