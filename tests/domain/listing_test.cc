// Listing: page sizes, keyset paging with tokens, filters, patient isolation.
// (Listing cost is not timed here; see bench/.)
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include "domain/records_fixture.h"

namespace wmty::testing {
namespace {

using ::google::protobuf::util::TimeUtil;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

class ListingTest : public RecordsTest {
 protected:
  // Creates `n` goals for `patient`, returning their names in creation order.
  std::vector<std::string> CreateGoals(const std::string& patient, int n, const std::string& label = "goal") {
    std::vector<std::string> names;
    for (int i = 0; i < n; ++i) {
      auto g = CreateGoal(patient, ValidGoal(label + " " + std::to_string(i)));
      EXPECT_TRUE(g.ok()) << g.status();
      if (g.ok()) names.push_back(g->name());
    }
    return names;
  }

  // Follows next_page_token from `req` to the end; returns every name seen.
  std::vector<std::string> ListAllGoals(v1::ListGoalsRequest req, int* pages = nullptr) {
    std::vector<std::string> names;
    int count = 0;
    do {
      auto page = ListGoals(req);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      EXPECT_LE(page->goals_size(), req.page_size());
      for (const auto& g : page->goals()) names.push_back(g.name());
      req.set_page_token(page->next_page_token());
      if (++count > 1000) break;
    } while (!req.page_token().empty());
    if (pages != nullptr) *pages = count;
    return names;
  }
};

// ---------------------------------------------------------------- page size

TEST_F(ListingTest, PageSizeZeroMeansFifty) {
  const auto names = CreateGoals("p1", 51);
  auto first = ListGoals(ListGoalsRequest("p1", 0));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(first->goals(), SizeIs(50));
  ASSERT_FALSE(first->next_page_token().empty());
  auto req = ListGoalsRequest("p1", 0);
  req.set_page_token(first->next_page_token());
  auto second = ListGoals(req);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_THAT(second->goals(), SizeIs(1));
  EXPECT_EQ(second->goals(0).name(), names.back());
  EXPECT_TRUE(second->next_page_token().empty());
}

TEST_F(ListingTest, PageSizeAbove1000OrNegativeIsInvalid) {
  CreateGoals("p1", 2);
  for (int size : {1001, 5000, -1}) {
    auto resp = ListGoals(ListGoalsRequest("p1", size));
    EXPECT_THAT(resp, StatusIs(absl::StatusCode::kInvalidArgument)) << size;
    EXPECT_THAT(ViolatedFields(resp.status()), ElementsAre("page_size")) << size;
  }
  auto max = ListGoals(ListGoalsRequest("p1", 1000));
  ASSERT_TRUE(max.ok());
  EXPECT_THAT(max->goals(), SizeIs(2));
  EXPECT_THAT(GoalVersions("patients/p1/goals/01HZZZZZZZZZZZZZZZZZZZZZZZ", 1001),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ListingTest, ExactlyFullLastPageHasNoToken) {
  CreateGoals("p1", 6);
  int pages = 0;
  EXPECT_THAT(ListAllGoals(ListGoalsRequest("p1", 3), &pages), SizeIs(6));
  EXPECT_EQ(pages, 2);
}

TEST_F(ListingTest, EmptyPatientListsNothing) {
  auto resp = ListGoals(ListGoalsRequest("nobody"));
  ASSERT_TRUE(resp.ok());
  EXPECT_THAT(resp->goals(), IsEmpty());
  EXPECT_TRUE(resp->next_page_token().empty());
}

TEST_F(ListingTest, MalformedParentIsInvalidArgument) {
  for (const char* parent : {"", "patients/", "patients/a/b", "p1"}) {
    v1::ListGoalsRequest req;
    req.set_parent(parent);
    auto resp = ListGoals(req);
    EXPECT_THAT(resp, StatusIs(absl::StatusCode::kInvalidArgument)) << parent;
    EXPECT_THAT(ViolatedFields(resp.status()), ElementsAre("parent")) << parent;
  }
}

// ---------------------------------------------------------------- paging

TEST_F(ListingTest, PagingReturnsEveryGoalOnceInCreationOrder) {
  const auto created = CreateGoals("p1", 120);
  ASSERT_THAT(created, SizeIs(120));
  int pages = 0;
  const auto listed = ListAllGoals(ListGoalsRequest("p1", 7), &pages);
  EXPECT_THAT(listed, ElementsAreArray(created));
  EXPECT_EQ(pages, 18);  // 17 full pages of 7 and one of 1
}

TEST_F(ListingTest, PagingStaysCorrectWhileGoalsAreCreated) {
  const auto old_goals = CreateGoals("p1", 20, "old");
  auto req = ListGoalsRequest("p1", 6);
  std::vector<std::string> seen;
  std::vector<std::string> added;
  int round = 0;
  do {
    auto page = ListGoals(req);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& g : page->goals()) seen.push_back(g.name());
    req.set_page_token(page->next_page_token());
    // Between pages, other writers add goals.
    for (const auto& name : CreateGoals("p1", 2, "new round " + std::to_string(round))) added.push_back(name);
    ASSERT_LT(++round, 100);
  } while (!req.page_token().empty());

  std::set<std::string> unique(seen.begin(), seen.end());
  EXPECT_EQ(unique.size(), seen.size()) << "a goal was listed twice";
  for (const auto& name : old_goals) EXPECT_EQ(unique.count(name), 1u) << "old goal skipped: " << name;
  // What was listed is in creation order: old goals first, then new ones.
  std::vector<std::string> expected_prefix(old_goals);
  ASSERT_GE(seen.size(), old_goals.size());
  EXPECT_EQ(std::vector<std::string>(seen.begin(), seen.begin() + old_goals.size()), expected_prefix);
  for (size_t i = old_goals.size(); i < seen.size(); ++i) {
    EXPECT_NE(std::find(added.begin(), added.end(), seen[i]), added.end());
  }
}

TEST_F(ListingTest, PagingSkipsNothingWhenSeenGoalsAreRetracted) {
  const auto created = CreateGoals("p1", 10);
  auto req = ListGoalsRequest("p1", 4);
  auto first = ListGoals(req);
  ASSERT_TRUE(first.ok());
  ASSERT_THAT(first->goals(), SizeIs(4));
  for (const auto& g : first->goals()) ASSERT_TRUE(RetractGoal(g.name()).ok());
  req.set_page_token(first->next_page_token());
  const auto rest = ListAllGoals(req);
  EXPECT_THAT(rest, ElementsAreArray(created.begin() + 4, created.end()));
}

TEST_F(ListingTest, TokenUsedWithAnotherFilterIsInvalid) {
  CreateGoals("p1", 5);
  auto req = ListGoalsRequest("p1", 2);
  auto first = ListGoals(req);
  ASSERT_TRUE(first.ok());
  ASSERT_FALSE(first->next_page_token().empty());

  auto with_status = req;
  with_status.set_page_token(first->next_page_token());
  with_status.add_lifecycle_statuses(v1::GOAL_ACTIVE);
  auto refused = ListGoals(with_status);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(refused.status()), ElementsAre("page_token"));

  auto with_retracted = req;
  with_retracted.set_page_token(first->next_page_token());
  with_retracted.mutable_filter()->set_show_retracted(true);
  EXPECT_THAT(ListGoals(with_retracted), StatusIs(absl::StatusCode::kInvalidArgument));

  auto other_patient = ListGoalsRequest("p2", 2);
  other_patient.set_page_token(first->next_page_token());
  EXPECT_THAT(ListGoals(other_patient), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ListingTest, TokenOfOneCollectionIsInvalidForAnother) {
  CreateGoals("p1", 3);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(CreatePreference("p1", ValidPreference()).ok());
  auto goals = ListGoals(ListGoalsRequest("p1", 1));
  ASSERT_TRUE(goals.ok());
  ASSERT_FALSE(goals->next_page_token().empty());

  v1::ListPreferencesRequest prefs;
  prefs.set_parent(Parent("p1"));
  prefs.set_page_size(1);
  prefs.set_page_token(goals->next_page_token());
  auto refused = records_->ListPreferences(prefs, {});
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(refused.status()), ElementsAre("page_token"));

  v1::ListWhatMattersRequest wms;
  wms.set_parent(Parent("p1"));
  wms.set_page_token(goals->next_page_token());
  EXPECT_THAT(records_->ListWhatMatters(wms, {}), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ListingTest, TokenIssuedByAnotherDatabaseIsInvalid) {
  CreateGoals("p1", 3);
  // Another server with its own database (and so its own token key) and the
  // same query.
  TempDir other_dir;
  storage::StoreOptions options;
  options.path = other_dir.path() + "/db";
  options.block_cache_bytes = size_t{8} << 20;
  auto other_store = storage::Store::Open(options);
  ASSERT_TRUE(other_store.ok()) << other_store.status();
  auto other = domain::PatientRecords::Create(other_store->get());
  ASSERT_TRUE(other.ok());
  for (int i = 0; i < 3; ++i) {
    v1::CreateGoalRequest req = CreateGoalRequest("p1", ValidGoal());
    ASSERT_TRUE(Await<v1::Goal>([&](auto done) { (*other)->CreateGoal(req, {}, std::move(done)); }).ok());
  }
  auto foreign = (*other)->ListGoals(ListGoalsRequest("p1", 1), {});
  ASSERT_TRUE(foreign.ok());
  ASSERT_FALSE(foreign->next_page_token().empty());

  auto req = ListGoalsRequest("p1", 1);
  req.set_page_token(foreign->next_page_token());
  auto refused = ListGoals(req);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(refused.status()), ElementsAre("page_token"));
  other->reset();
  (*other_store)->Close();
}

TEST_F(ListingTest, PageSizeMayChangeBetweenPages) {
  const auto created = CreateGoals("p1", 9);
  auto first = ListGoals(ListGoalsRequest("p1", 2));
  ASSERT_TRUE(first.ok());
  auto req = ListGoalsRequest("p1", 5);
  req.set_page_token(first->next_page_token());
  auto second = ListGoals(req);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_THAT(second->goals(), SizeIs(5));
  EXPECT_EQ(second->goals(0).name(), created[2]);
}

TEST_F(ListingTest, TamperedTokenIsInvalid) {
  CreateGoals("p1", 3);
  auto first = ListGoals(ListGoalsRequest("p1", 1));
  ASSERT_TRUE(first.ok());
  std::string token = first->next_page_token();
  ASSERT_FALSE(token.empty());
  token[token.size() / 2] = token[token.size() / 2] == 'A' ? 'B' : 'A';
  auto req = ListGoalsRequest("p1", 1);
  req.set_page_token(token);
  auto refused = ListGoals(req);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(refused.status()), ElementsAre("page_token"));
}

// ---------------------------------------------------------------- filters

TEST_F(ListingTest, FilterByLifecycleStatus) {
  std::map<v1::GoalLifecycleStatus, std::string> by_status;
  for (auto status : {v1::PROPOSED, v1::GOAL_ACTIVE, v1::COMPLETED, v1::ON_HOLD}) {
    v1::Goal g = ValidGoal();
    g.set_lifecycle_status(status);
    auto created = CreateGoal("p1", g);
    ASSERT_TRUE(created.ok()) << created.status();
    by_status[status] = created->name();
  }
  auto req = ListGoalsRequest("p1");
  req.add_lifecycle_statuses(v1::GOAL_ACTIVE);
  req.add_lifecycle_statuses(v1::COMPLETED);
  auto resp = ListGoals(req);
  ASSERT_TRUE(resp.ok());
  std::vector<std::string> names;
  for (const auto& g : resp->goals()) names.push_back(g.name());
  EXPECT_THAT(names, UnorderedElementsAre(by_status[v1::GOAL_ACTIVE], by_status[v1::COMPLETED]));

  auto bad = ListGoalsRequest("p1");
  bad.add_lifecycle_statuses(static_cast<v1::GoalLifecycleStatus>(42));
  auto refused = ListGoals(bad);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ViolatedFields(refused.status()), ElementsAre("lifecycle_statuses[0]"));
}

TEST_F(ListingTest, FilteredListPagesThroughMatchesOnly) {
  std::vector<std::string> active;
  for (int i = 0; i < 15; ++i) {
    v1::Goal g = ValidGoal("goal " + std::to_string(i));
    g.set_lifecycle_status(i % 3 == 0 ? v1::GOAL_ACTIVE : v1::PROPOSED);
    auto created = CreateGoal("p1", g);
    ASSERT_TRUE(created.ok());
    if (i % 3 == 0) active.push_back(created->name());
  }
  auto req = ListGoalsRequest("p1", 2);
  req.add_lifecycle_statuses(v1::GOAL_ACTIVE);
  int pages = 0;
  EXPECT_THAT(ListAllGoals(req, &pages), ElementsAreArray(active));
  EXPECT_EQ(pages, 3);
}

TEST_F(ListingTest, FilterPreferencesByKind) {
  v1::Preference language = ValidPreference();
  language.set_kind(v1::LANGUAGE);
  language.mutable_language()->set_language("es");
  v1::Preference name_to_use = ValidPreference();
  name_to_use.set_kind(v1::NAME_TO_USE);
  name_to_use.clear_detail();
  name_to_use.set_value_text("Call me Lupe");
  auto channels = CreatePreference("p1", ValidPreference());
  auto lang = CreatePreference("p1", language);
  auto name = CreatePreference("p1", name_to_use);
  ASSERT_TRUE(channels.ok() && lang.ok() && name.ok()) << lang.status() << name.status();

  v1::ListPreferencesRequest req;
  req.set_parent(Parent("p1"));
  req.add_kinds(v1::LANGUAGE);
  req.add_kinds(v1::NAME_TO_USE);
  auto resp = records_->ListPreferences(req, {});
  ASSERT_TRUE(resp.ok()) << resp.status();
  std::vector<std::string> names;
  for (const auto& p : resp->preferences()) names.push_back(p.name());
  EXPECT_THAT(names, UnorderedElementsAre(lang->name(), name->name()));

  req.add_kinds(static_cast<v1::PreferenceKind>(99));
  EXPECT_THAT(records_->ListPreferences(req, {}), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ListingTest, FilterWhatMattersByLifeDomain) {
  v1::WhatMatters family = ValidWhatMatters("My grandchildren");
  family.clear_life_domains();
  family.add_life_domains(v1::FAMILY_AND_RELATIONSHIPS);
  v1::WhatMatters faith = ValidWhatMatters("Going to Mass");
  faith.clear_life_domains();
  faith.add_life_domains(v1::SPIRITUALITY_AND_CULTURE);
  faith.add_life_domains(v1::FAMILY_AND_RELATIONSHIPS);
  v1::WhatMatters garden = ValidWhatMatters("My garden");  // HOME_AND_DAILY_LIFE
  auto a = CreateWhatMatters("p1", family);
  auto b = CreateWhatMatters("p1", faith);
  auto c = CreateWhatMatters("p1", garden);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());

  v1::ListWhatMattersRequest req;
  req.set_parent(Parent("p1"));
  req.add_life_domains(v1::FAMILY_AND_RELATIONSHIPS);
  auto resp = records_->ListWhatMatters(req, {});
  ASSERT_TRUE(resp.ok()) << resp.status();
  std::vector<std::string> names;
  for (const auto& w : resp->what_matters()) names.push_back(w.name());
  EXPECT_THAT(names, ElementsAre(a->name(), b->name()));

  req.clear_life_domains();
  req.add_life_domains(v1::FINANCES);
  resp = records_->ListWhatMatters(req, {});
  ASSERT_TRUE(resp.ok());
  EXPECT_THAT(resp->what_matters(), IsEmpty());
}

TEST_F(ListingTest, FilterByUpdatedSince) {
  UseFakeClock(absl::FromCivil(absl::CivilSecond(2027, 3, 1, 8, 0, 0), absl::UTCTimeZone()));
  auto early = CreateGoal("p1", ValidGoal("early"));
  auto touched = CreateGoal("p1", ValidGoal("touched later"));
  ASSERT_TRUE(early.ok() && touched.ok());
  clock_->Advance(absl::Hours(1));
  const absl::Time cutoff = clock_->Now();
  clock_->Advance(absl::Minutes(1));
  auto late = CreateGoal("p1", ValidGoal("late"));
  ASSERT_TRUE(late.ok());
  ASSERT_TRUE(Redescribe(*touched, "touched").ok());

  auto req = ListGoalsRequest("p1");
  *req.mutable_filter()->mutable_updated_since() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(cutoff));
  auto resp = ListGoals(req);
  ASSERT_TRUE(resp.ok());
  std::vector<std::string> names;
  for (const auto& g : resp->goals()) names.push_back(g.name());
  EXPECT_THAT(names, UnorderedElementsAre(touched->name(), late->name()));

  // "At or after": a change exactly at the cutoff is included.
  *req.mutable_filter()->mutable_updated_since() = late->update_time();
  resp = ListGoals(req);
  ASSERT_TRUE(resp.ok());
  names.clear();
  for (const auto& g : resp->goals()) names.push_back(g.name());
  EXPECT_THAT(names, UnorderedElementsAre(touched->name(), late->name()));
}

// ---------------------------------------------------------------- isolation

TEST_F(ListingTest, PatientsWhoseIdsPrefixEachOtherAreIsolated) {
  auto a = CreateGoal("a", ValidGoal("goal of a"));
  auto ab = CreateGoal("ab", ValidGoal("goal of ab"));
  auto a0 = CreateGoal("a0", ValidGoal("goal of a0"));
  auto wm_ab = CreateWhatMatters("ab", ValidWhatMatters("what matters to ab"));
  ASSERT_TRUE(a.ok() && ab.ok() && a0.ok() && wm_ab.ok());

  EXPECT_THAT(GoalNames("a"), ElementsAre(a->name()));
  EXPECT_THAT(GoalNames("ab"), ElementsAre(ab->name()));
  EXPECT_THAT(GoalNames("a0"), ElementsAre(a0->name()));

  auto summary = Summary("a");
  ASSERT_TRUE(summary.ok());
  ASSERT_THAT(summary->goals(), SizeIs(1));
  EXPECT_EQ(summary->goals(0).name(), a->name());
  EXPECT_THAT(summary->what_matters(), IsEmpty());

  // ab's goal id under patient a's name is not found, for every read and write.
  const std::string id = ab->name().substr(ab->name().rfind('/') + 1);
  const std::string spoofed = "patients/a/goals/" + id;
  EXPECT_THAT(GetGoal(spoofed), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(GoalVersions(spoofed), StatusIs(absl::StatusCode::kNotFound));
  v1::Goal change = *ab;
  change.set_name(spoofed);
  EXPECT_THAT(UpdateGoal(change), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(RetractGoal(spoofed), StatusIs(absl::StatusCode::kNotFound));

  // Patient a cannot link to or prioritize ab's records.
  v1::Goal linking = ValidGoal();
  linking.add_what_matters(wm_ab->name());
  EXPECT_THAT(CreateGoal("a", linking), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(UpdatePriorities(Priorities("a", {ab->name()})), StatusIs(absl::StatusCode::kInvalidArgument));
  auto ab_goal = GetGoal(ab->name());
  ASSERT_TRUE(ab_goal.ok());
  EXPECT_EQ(ab_goal->version(), 1);
}

}  // namespace
}  // namespace wmty::testing
