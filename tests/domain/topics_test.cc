// domain/topics.h: the published topics, filter validation and the event
// rule (IsSubscriptionEvent) on stored versions.

#include "domain/topics.h"

#include <array>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "wmty/v1/resources.pb.h"

namespace wmty::domain {
namespace {

using storage::Change;
using storage::Kind;
using storage::Subscription;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

Subscription Sub(absl::string_view topic, std::vector<std::array<std::string, 3>> filters = {}) {
  Subscription s;
  s.set_topic(std::string(topic));
  for (const auto& [type, name, value] : filters) {
    auto* f = s.add_filters();
    f->set_resource_type(type);
    f->set_name(name);
    f->set_value(value);
  }
  s.set_auth_disabled(true);
  return s;
}

struct Event {
  Change change;
  storage::Record version;
};

Event Of(Kind kind, Change::Op op, const std::string& patient, const google::protobuf::Message* resource = nullptr) {
  Event e;
  e.change.set_kind(kind);
  e.change.set_op(op);
  e.change.set_patient_id(patient);
  e.change.set_id("r1");
  e.change.set_sequence(7);
  e.version.set_kind(kind);
  e.version.set_patient_id(patient);
  e.version.set_id("r1");
  if (resource != nullptr) e.version.set_resource(resource->SerializeAsString());
  return e;
}

bool Matches(const Subscription& s, const Event& e) { return IsSubscriptionEvent(s, e.change, e.version); }

std::vector<std::string> ViolationFields(const absl::Status& s) {
  std::vector<std::string> out;
  const google::rpc::BadRequest bad_request = GetFieldViolations(s);
  for (const auto& v : bad_request.field_violations()) out.push_back(v.field());
  return out;
}

TEST(TopicsTest, ThreeTopicsUnderOneBase) {
  std::vector<std::string> urls;
  for (const SubscriptionTopic& t : SubscriptionTopics()) {
    EXPECT_TRUE(absl::StartsWith(t.url, kTopicBase)) << t.url;
    EXPECT_FALSE(t.kinds.empty());
    EXPECT_THAT(t.filter_names(), ::testing::Contains("patient"));
    urls.emplace_back(t.url);
  }
  EXPECT_THAT(urls, ElementsAre(std::string(kTopicWhatMattersChanged), std::string(kTopicGoalChanged),
                                std::string(kTopicGoalScoreRecorded)));
}

TEST(TopicsTest, FindIgnoresVersionSuffix) {
  ASSERT_NE(FindSubscriptionTopic(kTopicGoalChanged), nullptr);
  EXPECT_EQ(FindSubscriptionTopic(absl::StrCat(kTopicGoalChanged, "|1.0"))->url, kTopicGoalChanged);
  EXPECT_EQ(FindSubscriptionTopic("https://wmty.dev/fhir/SubscriptionTopic/nope"), nullptr);
  EXPECT_EQ(FindSubscriptionTopic(""), nullptr);
}

TEST(TopicsTest, ValidatesTopicAndEachFilter) {
  EXPECT_TRUE(
      ValidateTopicAndFilters(Sub(kTopicWhatMattersChanged, {{"Observation", "patient", "Patient/p1"},
                                                             {"Observation", "code", "http://loinc.org|95541-9"}}))
          .ok());
  EXPECT_THAT(ViolationFields(ValidateTopicAndFilters(Sub("https://example.org/topic"))), ElementsAre("topic"));
  // A type the topic is not about, an unknown filter name, a malformed value.
  const absl::Status s = ValidateTopicAndFilters(Sub(
      kTopicGoalChanged, {{"Observation", "patient", "p1"}, {"Goal", "category", "x"}, {"Goal", "patient", "a/b"}}));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ViolationFields(s), ElementsAre("filters[0].resource_type", "filters[1].name", "filters[2].value"));
  // code is an Observation filter only.
  EXPECT_THAT(ViolationFields(ValidateTopicAndFilters(Sub(kTopicWhatMattersChanged, {{"Goal", "code", "x"}}))),
              ElementsAre("filters[0].name"));
  EXPECT_THAT(ViolationFields(ValidateTopicAndFilters(Sub(kTopicWhatMattersChanged, {{"Observation", "code", ""}}))),
              ElementsAre("filters[0].value"));
}

TEST(TopicsTest, PatientFilterValue) {
  EXPECT_EQ(PatientOfFilterValue("Patient/p-1"), "p-1");
  EXPECT_EQ(PatientOfFilterValue("p-1"), "p-1");
  EXPECT_EQ(PatientOfFilterValue("Patient/"), std::nullopt);
  EXPECT_EQ(PatientOfFilterValue("Group/x/y"), std::nullopt);
}

TEST(TopicsTest, WhatMattersChangedCoversEveryChartKindAndOperation) {
  const Subscription s = Sub(kTopicWhatMattersChanged);
  for (Kind k : {storage::WHAT_MATTERS, storage::GOAL, storage::PREFERENCE, storage::PRIORITIES, storage::GOAL_SCORE}) {
    for (Change::Op op : {Change::CREATE, Change::UPDATE, Change::RETRACT}) {
      EXPECT_TRUE(Matches(s, Of(k, op, "p1"))) << k << " " << op;
    }
  }
  EXPECT_FALSE(Matches(s, Of(storage::PATIENT, Change::UPDATE, "p1")));
  EXPECT_FALSE(Matches(s, Of(storage::SUBSCRIPTION, Change::CREATE, "")));
}

TEST(TopicsTest, GoalTopicsTakeTheirKindsAndOperations) {
  EXPECT_TRUE(Matches(Sub(kTopicGoalChanged), Of(storage::GOAL, Change::RETRACT, "p1")));
  EXPECT_FALSE(Matches(Sub(kTopicGoalChanged), Of(storage::WHAT_MATTERS, Change::CREATE, "p1")));
  EXPECT_TRUE(Matches(Sub(kTopicGoalScoreRecorded), Of(storage::GOAL_SCORE, Change::CREATE, "p1")));
  EXPECT_FALSE(Matches(Sub(kTopicGoalScoreRecorded), Of(storage::GOAL_SCORE, Change::UPDATE, "p1")));
  EXPECT_FALSE(Matches(Sub(kTopicGoalScoreRecorded), Of(storage::GOAL, Change::CREATE, "p1")));
}

TEST(TopicsTest, SubscriptionChangesAreNeverEvents) {
  for (const SubscriptionTopic& t : SubscriptionTopics()) {
    EXPECT_FALSE(Matches(Sub(t.url), Of(storage::SUBSCRIPTION, Change::CREATE, "")));
  }
}

TEST(TopicsTest, PatientFilterHoldsForEveryTypeOfThatPatient) {
  const Subscription s = Sub(kTopicWhatMattersChanged, {{"Goal", "patient", "Patient/p1,p2"}});
  EXPECT_TRUE(Matches(s, Of(storage::GOAL, Change::CREATE, "p1")));
  EXPECT_TRUE(Matches(s, Of(storage::WHAT_MATTERS, Change::CREATE, "p2")));
  EXPECT_FALSE(Matches(s, Of(storage::GOAL, Change::CREATE, "p3")));
}

TEST(TopicsTest, CodeFilterNarrowsToMatchingObservations) {
  v1::Preference treatment;
  treatment.set_kind(v1::TREATMENT_INTERVENTION);
  v1::Preference language;
  language.set_kind(v1::LANGUAGE);
  v1::GoalScore followup;
  followup.set_score_type(v1::PATIENT_FOLLOW_UP);
  const Subscription wm =
      Sub(kTopicWhatMattersChanged, {{"Observation", "code", "https://fhir.wmty.health/CodeSystem/wmty|what-matters"}});
  EXPECT_TRUE(Matches(wm, Of(storage::WHAT_MATTERS, Change::UPDATE, "p1")));
  EXPECT_FALSE(Matches(wm, Of(storage::PREFERENCE, Change::UPDATE, "p1", &language)));
  EXPECT_FALSE(Matches(wm, Of(storage::GOAL, Change::UPDATE, "p1")));  // a code filter is about Observations
  const Subscription by_code = Sub(kTopicWhatMattersChanged, {{"Observation", "code", "75773-2,107334-5"}});
  EXPECT_TRUE(Matches(by_code, Of(storage::PREFERENCE, Change::CREATE, "p1", &treatment)));
  EXPECT_TRUE(Matches(by_code, Of(storage::GOAL_SCORE, Change::CREATE, "p1", &followup)));
  EXPECT_FALSE(Matches(by_code, Of(storage::PREFERENCE, Change::CREATE, "p1", &language)));
  EXPECT_FALSE(Matches(Sub(kTopicWhatMattersChanged, {{"Observation", "code", "http://snomed.info/sct|75773-2"}}),
                       Of(storage::PREFERENCE, Change::CREATE, "p1", &treatment)));
}

TEST(TopicsTest, ObservationCodes) {
  EXPECT_THAT(
      ObservationCodesOf(Of(storage::WHAT_MATTERS, Change::CREATE, "p").version),
      UnorderedElementsAre("http://loinc.org|95541-9", "https://fhir.wmty.health/CodeSystem/wmty|what-matters"));
  EXPECT_TRUE(ObservationCodesOf(Of(storage::GOAL, Change::CREATE, "p").version).empty());
}

TEST(TopicsTest, NeverMoreThanTheOwnerCouldRead) {
  Subscription s = Sub(kTopicWhatMattersChanged);
  s.set_auth_disabled(false);
  s.set_owner_patient("p1");
  s.add_readable_kinds(storage::GOAL);
  EXPECT_TRUE(Matches(s, Of(storage::GOAL, Change::CREATE, "p1")));
  EXPECT_FALSE(Matches(s, Of(storage::GOAL, Change::CREATE, "p2")));          // another patient
  EXPECT_FALSE(Matches(s, Of(storage::WHAT_MATTERS, Change::CREATE, "p1")));  // a kind it cannot read
  s.clear_readable_kinds();
  EXPECT_FALSE(Matches(s, Of(storage::GOAL, Change::CREATE, "p1")));  // nothing readable, auth on
}

TEST(TopicsTest, UnknownTopicMatchesNothing) {
  EXPECT_FALSE(Matches(Sub("https://example.org/x"), Of(storage::GOAL, Change::CREATE, "p1")));
}

}  // namespace
}  // namespace wmty::domain
