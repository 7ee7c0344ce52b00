// domain/subscriptions.h on a real Store (RocksDB in a temp dir): the SSRF
// policy of endpoints (with an injected resolver), validation, who may
// create, see and change a subscription, and the server's own status changes.

#include "domain/subscriptions.h"

#include <future>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/status.h"
#include "domain/topics.h"
#include "support/test_support.h"

namespace wmty::domain {
namespace {

using storage::Record;
using storage::Subscription;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// example.org resolves to a public address, internal.example to a private
// one, rebind.example to both; anything else does not resolve.
absl::StatusOr<std::vector<std::string>> FakeResolve(absl::string_view host) {
  if (host == "example.org") return std::vector<std::string>{"93.184.216.34", "2606:2800:220:1::1"};
  if (host == "internal.example") return std::vector<std::string>{"10.1.2.3"};
  if (host == "rebind.example") return std::vector<std::string>{"93.184.216.34", "::ffff:127.0.0.1"};
  return absl::NotFoundError("no such host");
}

TEST(CheckEndpointTest, PublicHttpsIsAllowed) {
  EXPECT_TRUE(CheckEndpoint("https://example.org/hook", false, FakeResolve).ok());
  EXPECT_TRUE(CheckEndpoint("https://example.org:8443/hook?x=1", false, FakeResolve).ok());
  EXPECT_TRUE(CheckEndpoint("https://93.184.216.34/hook", false, FakeResolve).ok());
  EXPECT_TRUE(CheckEndpoint("https://[2606:2800:220:1::1]/hook", false, FakeResolve).ok());
}

TEST(CheckEndpointTest, RefusesWhatIsNotAnAbsoluteHttpsUrl) {
  for (const char* url :
       {"", "example.org/hook", "ftp://example.org/", "https://", "https:///path", "https://user:pw@example.org/",
        "https://example.org:0/", "https://example.org:99999/", "https://exa mple.org/", "/relative"}) {
    EXPECT_EQ(CheckEndpoint(url, false, FakeResolve).code(), absl::StatusCode::kInvalidArgument) << url;
  }
  EXPECT_THAT(CheckEndpoint("http://example.org/hook", false, FakeResolve).message(), HasSubstr("http://"));
}

TEST(CheckEndpointTest, RefusesLocalPrivateAndMetadataAddresses) {
  for (const char* url :
       {"https://127.0.0.1/", "https://localhost/", "https://app.localhost/", "https://10.0.0.1/",
        "https://172.16.5.4/", "https://192.168.1.1/", "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/", "https://0.0.0.0/", "https://[::1]/", "https://[::]/", "https://[fd00::1]/",
        "https://[fe80::1]/", "https://[::ffff:10.0.0.1]/", "https://metadata.google.internal/",
        "https://internal.example/", "https://rebind.example/", "https://nowhere.invalid/", "https://224.0.0.1/"}) {
    EXPECT_EQ(CheckEndpoint(url, false, FakeResolve).code(), absl::StatusCode::kInvalidArgument) << url;
  }
}

TEST(CheckEndpointTest, TheFlagAllowsHttpAndPrivateAddresses) {
  EXPECT_TRUE(CheckEndpoint("http://127.0.0.1:8080/hook", true, FakeResolve).ok());
  EXPECT_TRUE(CheckEndpoint("http://localhost/hook", true, FakeResolve).ok());
  // Still an absolute http(s) URL.
  EXPECT_FALSE(CheckEndpoint("ftp://127.0.0.1/", true, FakeResolve).ok());
  EXPECT_FALSE(CheckEndpoint("127.0.0.1:8080", true, FakeResolve).ok());
}

TEST(CheckEndpointTest, PrivateAddresses) {
  EXPECT_TRUE(IsPrivateAddress("172.31.255.255"));
  EXPECT_FALSE(IsPrivateAddress("172.32.0.1"));
  EXPECT_FALSE(IsPrivateAddress("8.8.8.8"));
  EXPECT_TRUE(IsPrivateAddress("203.0.113.9"));
  EXPECT_TRUE(IsPrivateAddress("64:ff9b::a9fe:a9fe"));  // NAT64 of 169.254.169.254
  EXPECT_FALSE(IsPrivateAddress("2001:4860:4860::8888"));
  EXPECT_TRUE(IsPrivateAddress("not an address"));
}

auth::Principal Caller(std::string subject, std::string scopes, std::optional<std::string> patient = std::nullopt) {
  auth::Principal p;
  p.subject = std::move(subject);
  p.client_id = "app";
  p.patient = std::move(patient);
  p.scopes = auth::ParseScopes(scopes);
  return p;
}

class SubscriptionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    storage::StoreOptions options;
    options.path = dir_.path() + "/db";
    options.block_cache_bytes = size_t{8} << 20;
    auto store = storage::Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    SubscriptionsOptions so;
    so.resolve = FakeResolve;
    subs_ = std::make_unique<Subscriptions>(store_.get(), so);
  }
  void TearDown() override {
    subs_.reset();
    store_->Close();
  }

  static Subscription Valid(absl::string_view topic = kTopicWhatMattersChanged) {
    Subscription s;
    s.set_topic(std::string(topic));
    s.set_endpoint("https://example.org/hook");
    s.set_payload(Subscription::ID_ONLY);
    s.set_reason("tell the care team");
    s.add_headers("Authorization: Bearer secret-of-the-receiver");
    return s;
  }
  CallContext As(const auth::Principal* p) {
    CallContext ctx;
    ctx.principal = p;
    return ctx;
  }
  template <class F>
  absl::StatusOr<Record> Wait(F start) {
    std::promise<absl::StatusOr<Record>> promise;
    start([&](absl::StatusOr<Record> r) { promise.set_value(std::move(r)); });
    return promise.get_future().get();
  }
  absl::StatusOr<Record> Create(Subscription s, const auth::Principal* p) {
    return Wait([&](auto done) { subs_->Create(std::move(s), As(p), std::move(done)); });
  }
  absl::StatusOr<Record> Update(const std::string& id, Subscription s, const auth::Principal* p,
                                std::optional<int64_t> v = std::nullopt) {
    return Wait([&](auto done) { subs_->Update(id, std::move(s), v, As(p), std::move(done)); });
  }
  absl::StatusOr<Record> Delete(const std::string& id, const auth::Principal* p) {
    return Wait([&](auto done) { subs_->Delete(id, std::nullopt, As(p), std::move(done)); });
  }
  static Subscription Stored(const Record& r) {
    Subscription s;
    EXPECT_TRUE(s.ParseFromString(r.resource()));
    return s;
  }
  size_t Count() {
    size_t n = 0;
    EXPECT_TRUE(store_->NewReader()
                    ->ScanCurrent("", storage::SUBSCRIPTION, "",
                                  [&](const Record&) {
                                    ++n;
                                    return true;
                                  })
                    .ok());
    return n;
  }

  testing::TempDir dir_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<Subscriptions> subs_;
};

TEST_F(SubscriptionsTest, CreateStoresARequestedSubscriptionInTheChangeLog) {
  Subscription s = Valid();
  s.set_status(Subscription::ACTIVE);  // the handshake decides
  auto r = Create(s, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind(), storage::SUBSCRIPTION);
  EXPECT_EQ(r->patient_id(), "");
  EXPECT_EQ(r->version(), 1);
  EXPECT_EQ(Stored(*r).status(), Subscription::REQUESTED);
  EXPECT_TRUE(Stored(*r).auth_disabled());
  std::vector<storage::Change> changes;
  ASSERT_TRUE(store_->NewReader()
                  ->ScanChanges(0,
                                [&](const storage::Change& c) {
                                  changes.push_back(c);
                                  return true;
                                })
                  .ok());
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind(), storage::SUBSCRIPTION);
  EXPECT_EQ(changes[0].op(), storage::Change::CREATE);
  EXPECT_EQ(changes[0].sequence(), r->sequence());
}

TEST_F(SubscriptionsTest, InvalidSubscriptionsStoreNothing) {
  std::vector<std::pair<Subscription, std::string>> bad;
  Subscription s = Valid();
  s.set_topic("https://example.org/unknown");
  bad.push_back({s, "topic"});
  s = Valid();
  s.set_endpoint("http://example.org/hook");
  bad.push_back({s, "endpoint"});
  s = Valid();
  s.set_endpoint("https://10.0.0.8/hook");
  bad.push_back({s, "endpoint"});
  s = Valid();
  s.set_status(Subscription::ERROR);
  bad.push_back({s, "status"});
  s = Valid();
  s.set_payload(Subscription::PAYLOAD_UNSPECIFIED);
  bad.push_back({s, "payload"});
  s = Valid();
  s.add_headers("X-Injected: a\r\nHost: evil");
  bad.push_back({s, "headers[1]"});
  s = Valid();
  s.clear_reason();
  bad.push_back({s, "reason"});
  s = Valid(kTopicGoalChanged);
  auto* f = s.add_filters();
  f->set_resource_type("Goal");
  f->set_name("code");
  f->set_value("x");
  bad.push_back({s, "filters[0].name"});
  for (const auto& [sub, field] : bad) {
    auto r = Create(sub, nullptr);
    ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << field;
    std::vector<std::string> fields;
    const google::rpc::BadRequest bad_request = GetFieldViolations(r.status());
    for (const auto& v : bad_request.field_violations()) fields.push_back(v.field());
    EXPECT_THAT(fields, ::testing::Contains(field));
  }
  EXPECT_EQ(Count(), 0u);
  EXPECT_EQ(store_->LastSequence(), 0u);
}

TEST_F(SubscriptionsTest, CreatingNeedsReadOnTheTopicsTypes) {
  const auth::Principal goals_only = Caller("u1", "user/Goal.rs user/Subscription.cruds");
  EXPECT_EQ(Create(Valid(), &goals_only).status().code(), absl::StatusCode::kPermissionDenied);
  auto r = Create(Valid(kTopicGoalChanged), &goals_only);
  ASSERT_TRUE(r.ok()) << r.status();
  const Subscription stored = Stored(*r);
  EXPECT_EQ(stored.owner_subject(), "u1");
  EXPECT_EQ(stored.owner_client_id(), "app");
  EXPECT_EQ(stored.owner_patient(), "");
  EXPECT_THAT(stored.readable_kinds(), ElementsAre(storage::GOAL));
  EXPECT_FALSE(stored.auth_disabled());
}

TEST_F(SubscriptionsTest, PatientTokensAreConfinedToTheirPatient) {
  const auth::Principal patient = Caller("pt", "patient/*.rs patient/Subscription.cruds", "p1");
  auto own = Create(Valid(), &patient);
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(Stored(*own).owner_patient(), "p1");
  Subscription other = Valid();
  auto* f = other.add_filters();
  f->set_resource_type("Observation");
  f->set_name("patient");
  f->set_value("Patient/p2");
  EXPECT_EQ(Create(other, &patient).status().code(), absl::StatusCode::kPermissionDenied);
  f->set_value("Patient/p1");
  EXPECT_TRUE(Create(other, &patient).ok());
}

TEST_F(SubscriptionsTest, OnlyTheOwnerOrASystemScopeSeesIt) {
  const auth::Principal owner = Caller("u1", "user/*.rs user/Subscription.cruds");
  const auth::Principal other_user = Caller("u2", "user/*.rs user/Subscription.cruds");
  const auth::Principal same_user_other_app = [&] {
    auth::Principal p = owner;
    p.client_id = "other-app";
    return p;
  }();
  const auth::Principal system = Caller("svc", "system/Subscription.rs");
  auto r = Create(Valid(), &owner);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(subs_->Read(r->id(), As(&owner)).ok());
  EXPECT_TRUE(subs_->Read(r->id(), As(&system)).ok());
  EXPECT_EQ(subs_->Read(r->id(), As(&other_user)).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(subs_->Read(r->id(), As(&same_user_other_app)).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Update(r->id(), Valid(), &other_user).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Delete(r->id(), &other_user).status().code(), absl::StatusCode::kNotFound);
  SubscriptionQuery q;
  EXPECT_EQ(subs_->Search(q, As(&owner))->records.size(), 1u);
  EXPECT_EQ(subs_->Search(q, As(&other_user))->records.size(), 0u);
  EXPECT_EQ(subs_->Search(q, As(&system))->records.size(), 1u);
}

TEST_F(SubscriptionsTest, UpdateKeepsTopicOwnerAndServerStatus) {
  const auth::Principal owner = Caller("u1", "user/*.rs user/Subscription.cruds");
  auto r = Create(Valid(), &owner);
  ASSERT_TRUE(r.ok());
  Subscription moved = Valid(kTopicGoalChanged);
  EXPECT_EQ(Update(r->id(), moved, &owner).status().code(), absl::StatusCode::kInvalidArgument);
  // The server activates it; a client sending "active" back keeps it.
  std::promise<absl::Status> set;
  subs_->SetStatus(r->id(), Subscription::ACTIVE, "", [&](absl::Status s) { set.set_value(s); });
  ASSERT_TRUE(set.get_future().get().ok());
  Subscription same = Valid();
  same.set_status(Subscription::ACTIVE);
  same.set_reason("new reason");
  same.set_headers(0, absl::StrCat("Authorization: ", kMaskedHeaderValue));  // as read
  auto updated = Update(r->id(), same, &owner, 2);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->version(), 3);
  EXPECT_EQ(Stored(*updated).status(), Subscription::ACTIVE);
  EXPECT_EQ(Stored(*updated).reason(), "new reason");
  EXPECT_THAT(Stored(*updated).headers(), ElementsAre("Authorization: Bearer secret-of-the-receiver"));
  EXPECT_EQ(Stored(*updated).owner_subject(), "u1");
  // A new endpoint needs a new handshake.
  Subscription elsewhere = same;
  elsewhere.set_endpoint("https://example.org/other");
  auto moved_endpoint = Update(r->id(), elsewhere, &owner);
  ASSERT_TRUE(moved_endpoint.ok()) << moved_endpoint.status();
  EXPECT_EQ(Stored(*moved_endpoint).status(), Subscription::REQUESTED);
  // Stale version.
  EXPECT_EQ(Update(r->id(), same, &owner, 1).status().code(), absl::StatusCode::kAborted);
}

TEST_F(SubscriptionsTest, DeleteIsARetractionWithStatusOffAndHistoryKept) {
  auto r = Create(Valid(), nullptr);
  ASSERT_TRUE(r.ok());
  auto deleted = Delete(r->id(), nullptr);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_TRUE(deleted->retracted());
  EXPECT_EQ(Stored(*deleted).status(), Subscription::OFF);
  EXPECT_EQ(Delete(r->id(), nullptr).status().code(), absl::StatusCode::kFailedPrecondition);
  auto history = subs_->History(r->id(), CallContext{});
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->size(), 2u);
  EXPECT_EQ(subs_->Search(SubscriptionQuery{}, CallContext{})->records.size(), 0u);
  std::promise<absl::Status> set;
  subs_->SetStatus(r->id(), Subscription::ACTIVE, "", [&](absl::Status s) { set.set_value(s); });
  EXPECT_EQ(set.get_future().get().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SubscriptionsTest, SetStatusRecordsTheErrorAsANewVersion) {
  auto r = Create(Valid(), nullptr);
  ASSERT_TRUE(r.ok());
  std::promise<absl::Status> set;
  subs_->SetStatus(r->id(), Subscription::ERROR, "handshake: HTTP 503", [&](absl::Status s) { set.set_value(s); });
  ASSERT_TRUE(set.get_future().get().ok());
  auto current = subs_->Get(r->id());
  ASSERT_TRUE(current.ok() && current->has_value());
  EXPECT_EQ((*current)->version(), 2);
  EXPECT_EQ(Stored(**current).status(), Subscription::ERROR);
  EXPECT_EQ(Stored(**current).error(), "handshake: HTTP 503");
  EXPECT_FALSE(subs_->Get("unknown")->has_value());
}

TEST_F(SubscriptionsTest, SearchFiltersAndPages) {
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Create(Valid(), nullptr).ok());
  ASSERT_TRUE(Create(Valid(kTopicGoalChanged), nullptr).ok());
  SubscriptionQuery q;
  q.topic = std::string(kTopicWhatMattersChanged);
  q.limit = 2;
  auto first = subs_->Search(q, CallContext{});
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->records.size(), 2u);
  ASSERT_FALSE(first->next_after_id.empty());
  q.after_id = first->next_after_id;
  auto second = subs_->Search(q, CallContext{});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->records.size(), 1u);
  EXPECT_TRUE(second->next_after_id.empty());
  SubscriptionQuery off;
  off.status = Subscription::OFF;
  EXPECT_EQ(subs_->Search(off, CallContext{})->records.size(), 0u);
}

TEST_F(SubscriptionsTest, ForEachVisitsEveryOneDeletedIncluded) {
  auto kept = Create(Valid(), nullptr);
  auto deleted = Create(Valid(), nullptr);
  ASSERT_TRUE(kept.ok() && deleted.ok());
  ASSERT_TRUE(Delete(deleted->id(), nullptr).ok());
  std::vector<std::pair<std::string, bool>> seen;
  ASSERT_TRUE(subs_
                  ->ForEach([&](const Record& r) {
                    seen.emplace_back(r.id(), r.retracted());
                    return true;
                  })
                  .ok());
  EXPECT_THAT(seen, ::testing::UnorderedElementsAre(std::pair{kept->id(), false}, std::pair{deleted->id(), true}));
}

}  // namespace
}  // namespace wmty::domain
