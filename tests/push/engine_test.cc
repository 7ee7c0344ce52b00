// The push engine (services/push: matcher + delivery) through real
// components: a real Store (RocksDB in a temp dir), the real domain
// (PatientRecords writes, Subscriptions), and real HTTP receivers
// (tests/push/receiver.h) reached by cpprestsdk. Waits poll for an outcome
// with a generous limit; nothing asserts a duration.
#include "push/engine.h"

#include <fstream>
#include <iterator>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "domain/records_fixture.h"
#include "domain/subscription_events.h"
#include "domain/subscriptions.h"
#include "domain/topics.h"
#include "push/receiver.h"

namespace wmty::testing {
namespace {

using storage::Subscription;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class PushTest : public RecordsTest {
 protected:
  void SetUp() override {
    RecordsTest::SetUp();
    OpenPush();
  }
  void TearDown() override {
    ClosePush();
    RecordsTest::TearDown();
  }

  void OpenPush() {
    domain::SubscriptionsOptions options;
    options.allow_private_endpoints = true;
    subscriptions_ = std::make_unique<domain::Subscriptions>(store_.get(), options);
    events_ = std::make_unique<domain::SubscriptionEvents>(store_.get());
    registry_ = std::make_unique<metrics::Registry>();
    push::EngineOptions engine_options;
    engine_options.delivery.base_url = "http://wmty.test/fhir";
    engine_options.delivery.initial_backoff = absl::Milliseconds(10);
    engine_options.delivery.max_backoff = absl::Milliseconds(50);
    engine_options.delivery.failure_budget = 3;
    engine_options.delivery.default_timeout = absl::Seconds(20);
    engine_options.delivery.min_heartbeat = absl::Seconds(1);
    auto engine = push::Engine::Start(store_.get(), events_.get(), subscriptions_.get(), std::move(engine_options),
                                      registry_.get());
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
  }
  void ClosePush() {
    if (engine_ != nullptr) engine_->Stop();
    engine_.reset();
  }
  // The engine and the store closed and opened again (a restart).
  void RestartAll() {
    ClosePush();
    Reopen();
    OpenPush();
  }

  // A subscription to the goal-changed topic delivered to `url`; its id.
  std::string Subscribe(const std::string& url, Subscription::Payload payload = Subscription::ID_ONLY,
                        int max_count = 0, int heartbeat_seconds = 0, int timeout_seconds = 0) {
    Subscription s;
    s.set_topic(std::string(domain::kTopicGoalChanged));
    s.set_endpoint(url);
    s.set_payload(payload);
    s.set_content_type("application/fhir+json");
    s.set_reason("tests");
    s.set_max_count(max_count);
    s.set_heartbeat_period_seconds(heartbeat_seconds);
    s.set_timeout_seconds(timeout_seconds);
    s.add_headers("Authorization: Bearer receiver-secret");
    auto created =
        Await<storage::Record>([&](auto done) { subscriptions_->Create(s, domain::CallContext{}, std::move(done)); });
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? created->id() : "";
  }

  Subscription::Status StatusOf(const std::string& id) {
    auto record = subscriptions_->Get(id);
    Subscription s;
    if (record.ok() && record->has_value()) s.ParseFromString((*record)->resource());
    return s.status();
  }
  // Waits until delivery recorded `n` events as acknowledged (the receiver
  // sees a notification before its 2xx is recorded).
  bool WaitForDelivered(const std::string& id, uint64_t n) {
    const absl::Time end = absl::Now() + absl::Seconds(30);
    while (absl::Now() < end) {
      auto c = events_->Counters(id);
      if (c.ok() && c->delivery.delivered_through() == n) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }
  bool WaitForStatus(const std::string& id, Subscription::Status status) {
    const absl::Time end = absl::Now() + absl::Seconds(30);
    while (absl::Now() < end) {
      if (StatusOf(id) == status) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }

  void WriteGoals(int n) {
    for (int i = 0; i < n; ++i) ASSERT_TRUE(CreateGoal("p1", ValidGoal()).ok());
  }

  static auto HasEvents(size_t n) {
    return [n](const std::vector<Received>& got) {
      size_t events = 0;
      for (const Received& r : got) events += r.event_numbers.size();
      return events >= n;
    };
  }
  static auto HasType(const std::string& type) {
    return [type](const std::vector<Received>& got) {
      for (const Received& r : got) {
        if (r.type == type) return true;
      }
      return false;
    };
  }

  std::unique_ptr<domain::Subscriptions> subscriptions_;
  std::unique_ptr<domain::SubscriptionEvents> events_;
  std::unique_ptr<metrics::Registry> registry_;
  std::unique_ptr<push::Engine> engine_;
};

std::vector<uint64_t> OneTo(uint64_t n) {
  std::vector<uint64_t> out;
  for (uint64_t i = 1; i <= n; ++i) out.push_back(i);
  return out;
}

TEST_F(PushTest, HandshakeMakesActiveThenEventsAreNumberedWithoutGaps) {
  Receiver receiver;
  const std::string id = Subscribe(receiver.url());
  ASSERT_TRUE(receiver.WaitFor(HasType("handshake")));
  ASSERT_TRUE(WaitForStatus(id, Subscription::ACTIVE));
  const Received handshake = receiver.accepted().front();
  EXPECT_EQ(handshake.type, "handshake");
  EXPECT_EQ(handshake.status, "requested");
  EXPECT_EQ(handshake.authorization, "Bearer receiver-secret");

  WriteGoals(5);
  ASSERT_TRUE(receiver.WaitFor(HasEvents(5)));
  EXPECT_EQ(receiver.EventNumbers(), OneTo(5));
  for (const Received& r : receiver.accepted()) {
    if (r.type != "event-notification") continue;
    EXPECT_EQ(r.status, "active");
    EXPECT_EQ(r.events_since_start, r.event_numbers.back());
    ASSERT_EQ(r.focus.size(), r.event_numbers.size());
    EXPECT_THAT(r.focus[0], ::testing::StartsWith("http://wmty.test/fhir/Goal/"));
    EXPECT_EQ(r.resources, 0);  // id-only
    EXPECT_EQ(r.entries, 1 + static_cast<int>(r.event_numbers.size()));
  }
  auto counters = events_->Counters(id);
  ASSERT_TRUE(counters.ok());
  EXPECT_EQ(counters->match.events_since_start(), 5u);
  // Each delivered event is audited (a disclosure to the receiver).
  EXPECT_TRUE(receiver.WaitFor([&](const std::vector<Received>&) {
    int audited = 0;
    (void)store_->NewReader()->ScanAudit(0, [&](const storage::AuditRecord& a) {
      if (a.source() == "push" && a.outcome() == 0 && a.resource_type() == "Goal" && a.patient_id() == "p1" &&
          a.remote() == "127.0.0.1") {
        ++audited;
      }
      return true;
    });
    return audited == 5;
  }));
  const Receiver* r = &receiver;
  EXPECT_TRUE(r->WaitFor([&](const std::vector<Received>&) {
    auto c = events_->Counters(id);
    return c.ok() && c->delivery.delivered_through() == 5;
  }));
}

TEST_F(PushTest, PayloadModes) {
  Receiver empty, id_only, full;
  Subscribe(empty.url(), Subscription::EMPTY);
  Subscribe(id_only.url(), Subscription::ID_ONLY);
  Subscribe(full.url(), Subscription::FULL_RESOURCE);
  WriteGoals(1);
  for (Receiver* r : {&empty, &id_only, &full}) ASSERT_TRUE(r->WaitFor(HasEvents(1)));
  auto event_of = [](const Receiver& r) {
    for (const Received& got : r.accepted()) {
      if (got.type == "event-notification") return got;
    }
    return Received{};
  };
  const Received e = event_of(empty), i = event_of(id_only), f = event_of(full);
  EXPECT_EQ(e.entries, 1);
  EXPECT_THAT(e.focus, IsEmpty());
  EXPECT_EQ(i.entries, 2);
  EXPECT_EQ(i.resources, 0);
  EXPECT_EQ(f.entries, 2);
  EXPECT_EQ(f.resources, 1);
  rapidjson::Document d;
  d.Parse(f.body.c_str());
  const auto& resource = d["entry"][1]["resource"];
  EXPECT_STREQ(resource["resourceType"].GetString(), "Goal");
  EXPECT_EQ(absl::StrCat("http://wmty.test/fhir/Goal/", resource["id"].GetString()), f.focus[0]);
}

TEST_F(PushTest, RetriesAReceiverThatFailsThenDeliversInOrder) {
  Receiver receiver;
  const std::string id = Subscribe(receiver.url());
  ASSERT_TRUE(WaitForStatus(id, Subscription::ACTIVE));
  receiver.FailNext(2);  // under the budget of 3
  WriteGoals(3);
  ASSERT_TRUE(receiver.WaitFor(HasEvents(3)));
  EXPECT_EQ(receiver.EventNumbers(), OneTo(3));
  EXPECT_GE(receiver.requests(), 1 + 2 + 1);
  EXPECT_EQ(StatusOf(id), Subscription::ACTIVE);
  ASSERT_TRUE(WaitForDelivered(id, 3));
  auto counters = events_->Counters(id);
  ASSERT_TRUE(counters.ok());
  EXPECT_EQ(counters->delivery.failures(), 0);
  EXPECT_EQ(counters->delivery.total_failures(), 2);
}

TEST_F(PushTest, ErrorAfterTheFailureBudgetThenRecoveryWhenTheReceiverReturns) {
  Receiver receiver;
  const std::string id = Subscribe(receiver.url());
  ASSERT_TRUE(WaitForStatus(id, Subscription::ACTIVE));
  receiver.FailAlways();
  WriteGoals(2);
  ASSERT_TRUE(WaitForStatus(id, Subscription::ERROR));
  auto counters = events_->Counters(id);
  ASSERT_TRUE(counters.ok());
  EXPECT_GE(counters->delivery.failures(), 3);
  EXPECT_EQ(counters->delivery.last_error(), "the endpoint answered HTTP 503");
  EXPECT_EQ(counters->delivery.delivered_through(), 0u);
  receiver.Heal();
  ASSERT_TRUE(receiver.WaitFor(HasEvents(2)));
  EXPECT_EQ(receiver.EventNumbers(), OneTo(2));
  EXPECT_TRUE(WaitForStatus(id, Subscription::ACTIVE));
}

TEST_F(PushTest, HandshakeFailureIsErrorAndRecovers) {
  Receiver receiver;
  receiver.FailAlways(http::Status::not_found);
  const std::string id = Subscribe(receiver.url());
  ASSERT_TRUE(WaitForStatus(id, Subscription::ERROR));
  receiver.Heal();
  ASSERT_TRUE(receiver.WaitFor(HasType("handshake")));
  EXPECT_TRUE(WaitForStatus(id, Subscription::ACTIVE));
}

TEST_F(PushTest, BatchesUpToMaxCountInOrder) {
  Receiver receiver;
  const std::string id = Subscribe(receiver.url(), Subscription::ID_ONLY, /*max_count=*/2);
  ASSERT_TRUE(WaitForStatus(id, Subscription::ACTIVE));
  receiver.Hang();  // let events pile up behind one notification
  WriteGoals(1);
  ASSERT_TRUE(receiver.WaitFor([&](const std::vector<Received>&) { return receiver.held() == 1; }));
  WriteGoals(6);
  ASSERT_TRUE(receiver.WaitFor([&](const std::vector<Received>&) {
    auto c = events_->Counters(id);
    return c.ok() && c->match.events_since_start() == 7;
  })) << events_->Counters(id)->match.ShortDebugString()
      << " held " << receiver.held() << " requests " << receiver.requests() << [&] {
           std::string out;
           auto events = events_->ReadEvents(id, 1, 100, 100);
           if (!events.ok()) return std::string(events.status().message());
           for (const auto& e : *events) {
             absl::StrAppend(&out, " | ", e.number(), " seq ", e.change().sequence(), " kind ", e.change().kind(),
                             " op ", e.change().op());
           }
           return out;
         }();
  receiver.Release();  // the held one (event 1) is acknowledged
  ASSERT_TRUE(receiver.WaitFor(HasEvents(6)));
  for (const Received& r : receiver.accepted()) EXPECT_LE(r.event_numbers.size(), 2u);
  EXPECT_EQ(receiver.EventNumbers(), std::vector<uint64_t>({2, 3, 4, 5, 6, 7}));
}

TEST_F(PushTest, RestartResumesWithoutLoss) {
  Receiver receiver;
  const std::string id = Subscribe(receiver.url());
  ASSERT_TRUE(WaitForStatus(id, Subscription::ACTIVE));
  WriteGoals(2);
  ASSERT_TRUE(receiver.WaitFor(HasEvents(2)));
  ASSERT_TRUE(WaitForDelivered(id, 2));  // nothing in flight when it stops
  ClosePush();
  WriteGoals(3);  // committed while nothing matches or delivers
  RestartAll();
  WriteGoals(1);
  ASSERT_TRUE(receiver.WaitFor(HasEvents(6)));
  // No number twice here (each was acknowledged before the restart), none missing.
  EXPECT_EQ(receiver.EventNumbers(), OneTo(6));
  // The handshake is not repeated.
  int handshakes = 0;
  for (const Received& r : receiver.accepted()) handshakes += r.type == "handshake";
  EXPECT_EQ(handshakes, 1);
}

TEST_F(PushTest, UnacknowledgedNotificationIsSentAgainWithTheSameNumbersAfterARestart) {
  Receiver receiver;
  const std::string id = Subscribe(receiver.url());
  ASSERT_TRUE(WaitForStatus(id, Subscription::ACTIVE));
  receiver.Hang();
  WriteGoals(1);
  ASSERT_TRUE(receiver.WaitFor([&](const std::vector<Received>&) { return receiver.held() == 1; }));
  ClosePush();  // cancels the exchange in flight: never acknowledged
  receiver.Release();
  const size_t before = receiver.EventNumbers().size();
  RestartAll();
  ASSERT_TRUE(receiver.WaitFor(HasEvents(before + 1)));
  EXPECT_EQ(receiver.EventNumbers().back(), 1u);
}

TEST_F(PushTest, ADeadReceiverDoesNotDelayAnotherSubscription) {
  Receiver dead, alive;
  const std::string dead_id = Subscribe(dead.url(), Subscription::ID_ONLY, 0, 0, /*timeout_seconds=*/60);
  const std::string alive_id = Subscribe(alive.url());
  ASSERT_TRUE(WaitForStatus(dead_id, Subscription::ACTIVE));
  ASSERT_TRUE(WaitForStatus(alive_id, Subscription::ACTIVE));
  dead.Hang();
  WriteGoals(3);
  ASSERT_TRUE(dead.WaitFor([&](const std::vector<Received>&) { return dead.held() == 1; }));
  ASSERT_TRUE(alive.WaitFor(HasEvents(3)));
  // Delivered while the dead receiver still holds its notification.
  EXPECT_EQ(dead.held(), 1);
  EXPECT_THAT(dead.EventNumbers(), IsEmpty());
  dead.Release();  // its 200 acknowledges events 1-3 (sent in one notification)
  EXPECT_TRUE(dead.WaitFor([&](const std::vector<Received>&) {
    auto c = events_->Counters(dead_id);
    return c.ok() && c->delivery.delivered_through() == 3;
  }));
}

// HTTPS receivers are checked against the system trust store: a self-signed
// certificate is refused (the handshake fails: error), never sent to.
TEST_F(PushTest, UntrustedReceiverCertificateIsRefused) {
  std::string out;
  const std::string cert = dir_.path() + "/receiver.pem", key = dir_.path() + "/receiver.key";
  ASSERT_EQ(RunCommand({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
                        cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"},
                       &out),
            0)
      << out;
  auto read = [](const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  Receiver receiver(read(cert), read(key));
  const std::string id = Subscribe(receiver.url());
  ASSERT_TRUE(WaitForStatus(id, Subscription::ERROR));
  EXPECT_THAT(receiver.accepted(), IsEmpty());
  auto counters = events_->Counters(id);
  ASSERT_TRUE(counters.ok());
  EXPECT_FALSE(counters->delivery.handshake_done());
  EXPECT_EQ(counters->delivery.last_error(), "could not connect to the endpoint");
}

TEST_F(PushTest, HeartbeatsWhenIdle) {
  Receiver receiver;
  const std::string id = Subscribe(receiver.url(), Subscription::EMPTY, 0, /*heartbeat_seconds=*/1);
  ASSERT_TRUE(WaitForStatus(id, Subscription::ACTIVE));
  ASSERT_TRUE(receiver.WaitFor(HasType("heartbeat")));
}

TEST_F(PushTest, DeletedSubscriptionGetsNothingMore) {
  Receiver receiver;
  const std::string id = Subscribe(receiver.url());
  ASSERT_TRUE(WaitForStatus(id, Subscription::ACTIVE));
  WriteGoals(1);
  ASSERT_TRUE(receiver.WaitFor(HasEvents(1)));
  auto deleted = Await<storage::Record>(
      [&](auto done) { subscriptions_->Delete(id, std::nullopt, domain::CallContext{}, std::move(done)); });
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  // The matcher has seen the delete once its cursor passed it.
  const uint64_t delete_sequence = deleted->sequence();
  ASSERT_TRUE(
      receiver.WaitFor([&](const std::vector<Received>&) { return engine_->matcher_cursor() >= delete_sequence; }));
  WriteGoals(2);
  const uint64_t last = store_->LastSequence();
  ASSERT_TRUE(receiver.WaitFor([&](const std::vector<Received>&) { return engine_->matcher_cursor() >= last; }));
  auto counters = events_->Counters(id);
  ASSERT_TRUE(counters.ok());
  EXPECT_TRUE(counters->match.ended());
  EXPECT_EQ(counters->match.events_since_start(), 1u);
}

}  // namespace
}  // namespace wmty::testing
