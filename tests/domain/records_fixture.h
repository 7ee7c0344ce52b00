// Fixture for the domain tests: a real Store (RocksDB, synced writes) in a
// fresh temp dir and the domain core (PatientRecords) on top of it, called
// directly with wmty.v1 requests. Writes are asynchronous; the helpers here
// wait for their callback, so tests read like straight-line code.
#ifndef WMTY_TESTS_DOMAIN_RECORDS_FIXTURE_H_
#define WMTY_TESTS_DOMAIN_RECORDS_FIXTURE_H_

#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "domain/names.h"
#include "domain/patient_records.h"
#include "storage/store.h"
#include "support/test_support.h"
#include "wmty/v1/service.pb.h"

namespace wmty::testing {

// Runs an asynchronous domain write and waits for its result.
//   auto goal = Await<v1::Goal>([&](auto done) { records->CreateGoal(req, ctx, std::move(done)); });
template <class T, class Start>
absl::StatusOr<T> Await(Start start) {
  std::promise<absl::StatusOr<T>> promise;
  auto future = promise.get_future();
  start(domain::Done<T>([&promise](absl::StatusOr<T> result) { promise.set_value(std::move(result)); }));
  return future.get();
}

// A clock tests move by hand (for update_time filters).
class FakeClock {
 public:
  explicit FakeClock(absl::Time start) : now_(start) {}
  absl::Time Now() const {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_;
};

inline std::string Parent(const std::string& patient) { return domain::FormatParent(patient); }

class RecordsTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }
  void TearDown() override {
    records_.reset();
    if (store_ != nullptr) store_->Close();
  }

  // Opens the store in the fixture's directory (again, after Close).
  void Open() {
    storage::StoreOptions options;
    options.path = dir_.path() + "/db";
    options.block_cache_bytes = size_t{8} << 20;
    if (clock_ != nullptr) options.clock = [c = clock_] { return c->Now(); };
    auto store = storage::Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    domain::PatientRecordsOptions records_options;
    if (clock_ != nullptr) records_options.clock = [c = clock_] { return c->Now(); };
    auto records = domain::PatientRecords::Create(store_.get(), records_options);
    ASSERT_TRUE(records.ok()) << records.status();
    records_ = std::move(*records);
  }

  // Closes everything and opens the same directory again.
  void Reopen() {
    records_.reset();
    store_->Close();
    store_.reset();
    Open();
  }

  // Switches to a hand-moved clock (store timestamps and domain "now").
  void UseFakeClock(absl::Time start) {
    clock_ = std::make_shared<FakeClock>(start);
    Reopen();
  }

  // ------------------------------------------------------------ writes

  absl::StatusOr<v1::WhatMatters> CreateWhatMatters(const std::string& patient, const v1::WhatMatters& w,
                                                    const std::string& request_id = "",
                                                    const domain::CallContext& ctx = {}) {
    v1::CreateWhatMattersRequest req;
    req.set_parent(Parent(patient));
    *req.mutable_what_matters() = w;
    req.set_request_id(request_id);
    return Await<v1::WhatMatters>([&](auto done) { records_->CreateWhatMatters(req, ctx, std::move(done)); });
  }

  absl::StatusOr<v1::Goal> CreateGoal(const std::string& patient, const v1::Goal& g, const std::string& request_id = "",
                                      const domain::CallContext& ctx = {}) {
    return CreateGoal(CreateGoalRequest(patient, g, request_id), ctx);
  }
  absl::StatusOr<v1::Goal> CreateGoal(const v1::CreateGoalRequest& req, const domain::CallContext& ctx = {}) {
    return Await<v1::Goal>([&](auto done) { records_->CreateGoal(req, ctx, std::move(done)); });
  }
  static v1::CreateGoalRequest CreateGoalRequest(const std::string& patient, const v1::Goal& g,
                                                 const std::string& request_id = "") {
    v1::CreateGoalRequest req;
    req.set_parent(Parent(patient));
    *req.mutable_goal() = g;
    req.set_request_id(request_id);
    return req;
  }

  absl::StatusOr<v1::Preference> CreatePreference(const std::string& patient, const v1::Preference& p,
                                                  const std::string& request_id = "") {
    v1::CreatePreferenceRequest req;
    req.set_parent(Parent(patient));
    *req.mutable_preference() = p;
    req.set_request_id(request_id);
    return Await<v1::Preference>([&](auto done) { records_->CreatePreference(req, {}, std::move(done)); });
  }

  // Replaces the whole goal (no field mask). `g` must carry name and etag.
  absl::StatusOr<v1::Goal> UpdateGoal(const v1::Goal& g, std::vector<std::string> mask_paths = {},
                                      const std::string& request_id = "", const domain::CallContext& ctx = {}) {
    return UpdateGoal(UpdateGoalRequest(g, std::move(mask_paths), request_id), ctx);
  }
  absl::StatusOr<v1::Goal> UpdateGoal(const v1::UpdateGoalRequest& req, const domain::CallContext& ctx = {}) {
    return Await<v1::Goal>([&](auto done) { records_->UpdateGoal(req, ctx, std::move(done)); });
  }
  static v1::UpdateGoalRequest UpdateGoalRequest(const v1::Goal& g, std::vector<std::string> mask_paths = {},
                                                 const std::string& request_id = "") {
    v1::UpdateGoalRequest req;
    *req.mutable_goal() = g;
    for (auto& p : mask_paths) req.mutable_update_mask()->add_paths(std::move(p));
    req.set_request_id(request_id);
    return req;
  }

  // An update that changes only the description (field mask), based on `current`.
  absl::StatusOr<v1::Goal> Redescribe(const v1::Goal& current, const std::string& description,
                                      const std::string& request_id = "") {
    v1::Goal change;
    change.set_name(current.name());
    change.set_etag(current.etag());
    change.set_description(description);
    *change.mutable_provenance() = NurseProvenance();
    return UpdateGoal(change, {"description"}, request_id);
  }

  absl::StatusOr<v1::WhatMatters> UpdateWhatMatters(const v1::WhatMatters& w) {
    v1::UpdateWhatMattersRequest req;
    *req.mutable_what_matters() = w;
    return Await<v1::WhatMatters>([&](auto done) { records_->UpdateWhatMatters(req, {}, std::move(done)); });
  }

  static v1::RetractRequest RetractRequest(const std::string& name, const std::string& reason = "entered in error",
                                           const std::string& request_id = "") {
    v1::RetractRequest req;
    req.set_name(name);
    req.set_reason(reason);
    req.mutable_retracted_by()->set_practitioner_id("nurse-17");
    req.set_request_id(request_id);
    return req;
  }
  absl::StatusOr<v1::Goal> RetractGoal(const v1::RetractRequest& req) {
    return Await<v1::Goal>([&](auto done) { records_->RetractGoal(req, {}, std::move(done)); });
  }
  absl::StatusOr<v1::Goal> RetractGoal(const std::string& name) { return RetractGoal(RetractRequest(name)); }
  absl::StatusOr<v1::WhatMatters> RetractWhatMatters(const std::string& name) {
    return Await<v1::WhatMatters>(
        [&](auto done) { records_->RetractWhatMatters(RetractRequest(name), {}, std::move(done)); });
  }
  absl::StatusOr<v1::Preference> RetractPreference(const std::string& name) {
    return Await<v1::Preference>(
        [&](auto done) { records_->RetractPreference(RetractRequest(name), {}, std::move(done)); });
  }

  static v1::Priorities Priorities(const std::string& patient, const std::vector<std::string>& items,
                                   const std::string& etag = "") {
    v1::Priorities p;
    p.set_name(domain::FormatName(storage::PRIORITIES, patient, domain::kPrioritiesId));
    for (const auto& item : items) p.add_items(item);
    p.set_etag(etag);
    *p.mutable_provenance() = NurseProvenance();
    return p;
  }
  absl::StatusOr<v1::Priorities> UpdatePriorities(const v1::Priorities& p, const std::string& request_id = "",
                                                  const domain::CallContext& ctx = {}) {
    v1::UpdatePrioritiesRequest req;
    *req.mutable_priorities() = p;
    req.set_request_id(request_id);
    return Await<v1::Priorities>([&](auto done) { records_->UpdatePriorities(req, ctx, std::move(done)); });
  }

  // ------------------------------------------------------------ reads

  static v1::GetResourceRequest Get(const std::string& name) {
    v1::GetResourceRequest req;
    req.set_name(name);
    return req;
  }
  absl::StatusOr<v1::Goal> GetGoal(const std::string& name, const domain::CallContext& ctx = {}) {
    return records_->GetGoal(Get(name), ctx);
  }

  static v1::ListGoalsRequest ListGoalsRequest(const std::string& patient, int page_size = 0) {
    v1::ListGoalsRequest req;
    req.set_parent(Parent(patient));
    req.set_page_size(page_size);
    return req;
  }
  absl::StatusOr<v1::ListGoalsResponse> ListGoals(const v1::ListGoalsRequest& req) {
    return records_->ListGoals(req, {});
  }

  // Names of all goals of a patient (one page of up to 1000).
  std::vector<std::string> GoalNames(const std::string& patient, bool show_retracted = false) {
    auto req = ListGoalsRequest(patient, 1000);
    req.mutable_filter()->set_show_retracted(show_retracted);
    auto resp = ListGoals(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    std::vector<std::string> names;
    if (resp.ok()) {
      for (const auto& g : resp->goals()) names.push_back(g.name());
    }
    return names;
  }

  absl::StatusOr<v1::ListGoalsResponse> GoalVersions(const std::string& name, int page_size = 0,
                                                     const std::string& page_token = "") {
    v1::ListVersionsRequest req;
    req.set_name(name);
    req.set_page_size(page_size);
    req.set_page_token(page_token);
    return records_->ListGoalVersions(req, {});
  }

  absl::StatusOr<v1::PatientSummary> Summary(const std::string& patient, const domain::CallContext& ctx = {}) {
    v1::GetPatientSummaryRequest req;
    req.set_parent(Parent(patient));
    return records_->GetPatientSummary(req, ctx);
  }

  // Store::VerifyIntegrity as a gtest assertion.
  void ExpectIntegrity() {
    auto s = store_->VerifyIntegrity();
    EXPECT_TRUE(s.ok()) << s;
  }

  static domain::CallContext PastDeadline() {
    domain::CallContext ctx;
    ctx.deadline = absl::Now() - absl::Seconds(1);
    return ctx;
  }

  TempDir dir_;
  std::shared_ptr<FakeClock> clock_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<domain::PatientRecords> records_;
};

}  // namespace wmty::testing

#endif  // WMTY_TESTS_DOMAIN_RECORDS_FIXTURE_H_
