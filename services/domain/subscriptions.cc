// The rules of the Subscription resource (subscriptions.h): validation, the
// SSRF policy of endpoints, ownership and authorization, and its writes.

#include "domain/subscriptions.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "domain/fhir_types.h"
#include "domain/names.h"
#include "domain/topics.h"

namespace wmty::domain {
namespace {

using storage::Record;
using storage::Subscription;

absl::Status BadEndpoint(absl::string_view why) { return absl::InvalidArgumentError(why); }

bool InV4(uint32_t a, uint32_t net, int bits) { return bits == 0 || (a >> (32 - bits)) == (net >> (32 - bits)); }

bool IsPrivateV4(uint32_t a) {
  constexpr std::array<std::pair<uint32_t, int>, 14> kRefused = {{
      {0x00000000, 8},   // 0/8: "this network", unspecified
      {0x0A000000, 8},   // 10/8 private
      {0x64400000, 10},  // 100.64/10 carrier-grade NAT
      {0x7F000000, 8},   // 127/8 loopback
      {0xA9FE0000, 16},  // 169.254/16 link-local, incl. 169.254.169.254 metadata
      {0xAC100000, 12},  // 172.16/12 private
      {0xC0000000, 24},  // 192.0.0/24 IETF protocol assignments
      {0xC0A80000, 16},  // 192.168/16 private
      {0xC6120000, 15},  // 198.18/15 benchmarking
      {0xE0000000, 4},   // 224/4 multicast
      {0xF0000000, 4},   // 240/4 reserved, incl. broadcast
      {0xC0000200, 24},  // 192.0.2/24 documentation (TEST-NET-1)
      {0xC6336400, 24},  // 198.51.100/24 documentation (TEST-NET-2)
      {0xCB007100, 24},  // 203.0.113/24 documentation (TEST-NET-3)
  }};
  return std::any_of(kRefused.begin(), kRefused.end(), [&](const auto& n) { return InV4(a, n.first, n.second); });
}

bool IsPrivateV6(const unsigned char b[16]) {
  static const unsigned char kZero[16] = {};
  if (std::equal(b, b + 15, kZero)) return true;           // :: and ::1
  if ((b[0] & 0xFE) == 0xFC) return true;                  // fc00::/7 unique local
  if (b[0] == 0xFE && (b[1] & 0xC0) == 0x80) return true;  // fe80::/10 link-local
  if (b[0] == 0xFE && (b[1] & 0xC0) == 0xC0) return true;  // fec0::/10 site-local (deprecated)
  if (b[0] == 0xFF) return true;                           // multicast
  const auto v4_at_12 = [&] {
    return (uint32_t{b[12]} << 24) | (uint32_t{b[13]} << 16) | (uint32_t{b[14]} << 8) | uint32_t{b[15]};
  };
  // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible), 64:ff9b::a.b.c.d (NAT64): the IPv4 address decides.
  static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  static const unsigned char kNat64[12] = {0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::equal(b, b + 12, kMapped) || std::equal(b, b + 12, kZero) || std::equal(b, b + 12, kNat64)) {
    return IsPrivateV4(v4_at_12());
  }
  return false;
}

// The host of an absolute http(s) URL (brackets of an IPv6 literal
// removed), or an error saying what is wrong.
absl::StatusOr<std::string> HostOf(absl::string_view url, bool allow_private) {
  for (char ch : url) {
    if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7F) {
      return BadEndpoint("the endpoint must be an absolute http(s) URL without spaces or control characters");
    }
  }
  absl::string_view rest = url;
  const bool https = absl::ConsumePrefix(&rest, "https://");
  if (!https && !absl::ConsumePrefix(&rest, "http://")) {
    return BadEndpoint("the endpoint must be an absolute http(s) URL (https://host/path)");
  }
  if (!https && !allow_private) {
    return BadEndpoint("plain http:// endpoints are refused (notifications carry patient data): use https://");
  }
  const absl::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (absl::StrContains(authority, '@')) return BadEndpoint("the endpoint may not carry user information (user@)");
  absl::string_view host = authority, port;
  if (absl::StartsWith(authority, "[")) {
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) return BadEndpoint("the endpoint's IPv6 host is missing its ']'");
    host = authority.substr(1, close - 1);
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty() && !absl::ConsumePrefix(&after, ":")) return BadEndpoint("the endpoint's host is malformed");
    port = after;
  } else if (const size_t colon = authority.find(':'); colon != absl::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  uint32_t port_number = 0;
  if (!port.empty() && (!absl::SimpleAtoi(port, &port_number) || port_number == 0 || port_number > 65535)) {
    return BadEndpoint("the endpoint's port must be a number from 1 to 65535");
  }
  if (host.empty()) return BadEndpoint("the endpoint must name a host");
  return absl::AsciiStrToLower(host);
}

bool IsRefusedName(absl::string_view host) {
  absl::ConsumeSuffix(&host, ".");
  return host == "localhost" || absl::EndsWith(host, ".localhost") || host == "metadata" ||
         absl::StartsWith(host, "metadata.") || absl::EndsWith(host, ".internal") || absl::EndsWith(host, ".local");
}

bool IsIpLiteral(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// May `p` do `permission` on Subscription through a system/ scope?
bool SystemScopeOnSubscriptions(const auth::Principal& p, auth::Permission permission) {
  return std::any_of(p.scopes.begin(), p.scopes.end(), [&](const auth::Scope& s) {
    return s.context == auth::ScopeContext::kSystem && !s.has_filter &&
           (s.resource_type == "Subscription" || s.resource_type == "*") && (s.permissions & permission) != 0;
  });
}

// The FHIR types a subscription can deliver: its topic's, or only
// Observation when it filters on an Observation code.
std::vector<absl::string_view> DeliverableTypes(const Subscription& s, const SubscriptionTopic& topic) {
  for (const storage::SubscriptionFilter& f : s.filters()) {
    if (f.name() != "patient") return {f.resource_type()};
  }
  return topic.resource_types;
}

// Client status -> stored status (nullopt: refused). A client cannot set
// active or error: the server's handshake and deliveries do; sending back
// the current status keeps it.
std::optional<Subscription::Status> StatusFromClient(Subscription::Status wanted, Subscription::Status current) {
  if (wanted == current && current != Subscription::STATUS_UNSPECIFIED) return current;
  switch (wanted) {
    case Subscription::STATUS_UNSPECIFIED:
    case Subscription::REQUESTED:
    case Subscription::ACTIVE:
      return Subscription::REQUESTED;
    case Subscription::OFF:
      return Subscription::OFF;
    default:
      return std::nullopt;
  }
}

absl::StatusOr<Subscription> ParseSubscription(const Record& r) {
  Subscription s;
  if (!s.ParseFromString(r.resource())) return absl::DataLossError("stored subscription does not parse");
  return s;
}

absl::Status ValidateHeaders(const Subscription& s) {
  FieldViolations v;
  for (int i = 0; i < s.headers_size(); ++i) {
    const std::string& h = s.headers(i);
    const size_t colon = h.find(':');
    const bool bad_char =
        std::any_of(h.begin(), h.end(), [](char ch) { return ch == '\r' || ch == '\n' || ch == '\0'; });
    const absl::string_view name = absl::string_view(h).substr(0, colon);
    const bool bad_name =
        colon == std::string::npos || name.empty() || !std::all_of(name.begin(), name.end(), [](char ch) {
          return absl::ascii_isalnum(ch) || absl::StrContains("!#$%&'*+-.^_`|~", ch);
        });
    if (bad_char || bad_name) {
      v.Add(absl::StrCat("headers[", i, "]"), "a header is \"Name: value\" on one line (a token, a colon, a value)");
    }
  }
  return v.ToStatus();
}

absl::string_view HeaderName(absl::string_view header) { return header.substr(0, header.find(':')); }

// Headers sent back as read ("Name: (hidden)") keep their stored value.
absl::Status RestoreMaskedHeaders(const Subscription& stored, Subscription* s) {
  for (int i = 0; i < s->headers_size(); ++i) {
    const absl::string_view h = s->headers(i);
    if (absl::StripAsciiWhitespace(h.substr(h.find(':') + 1)) != kMaskedHeaderValue) continue;
    const auto it = std::find_if(stored.headers().begin(), stored.headers().end(), [&](const std::string& old) {
      return absl::EqualsIgnoreCase(HeaderName(old), HeaderName(h));
    });
    if (it == stored.headers().end()) {
      return InvalidField(absl::StrCat("headers[", i, "]"),
                          absl::StrCat("the value ", kMaskedHeaderValue,
                                       " keeps a stored header's value, and no header of this name is stored"));
    }
    *s->mutable_headers(i) = *it;
  }
  return absl::OkStatus();
}

}  // namespace

bool IsPrivateAddress(absl::string_view ip) {
  const std::string text(ip);
  in_addr v4;
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) return IsPrivateV4(ntohl(v4.s_addr));
  in6_addr v6;
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) return IsPrivateV6(v6.s6_addr);
  return true;  // not an address: refuse
}

HostResolver SystemResolver() {
  return [](absl::string_view host) -> absl::StatusOr<std::vector<std::string>> {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const std::string name(host);
    if (getaddrinfo(name.c_str(), nullptr, &hints, &found) != 0 || found == nullptr) {
      return absl::NotFoundError("the endpoint's host name does not resolve");
    }
    std::vector<std::string> out;
    for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
      char buf[INET6_ADDRSTRLEN] = {};
      const void* addr = a->ai_family == AF_INET
                             ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
                             : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
      if (inet_ntop(a->ai_family, addr, buf, sizeof buf) != nullptr) out.emplace_back(buf);
    }
    freeaddrinfo(found);
    return out;
  };
}

absl::Status CheckEndpoint(absl::string_view url, bool allow_private, const HostResolver& resolve) {
  if (url.size() > 2048) return BadEndpoint("the endpoint URL is longer than 2048 characters");
  auto host = HostOf(url, allow_private);
  if (!host.ok()) return host.status();
  if (allow_private) return absl::OkStatus();
  if (IsRefusedName(*host)) {
    return BadEndpoint("the endpoint's host is a local or metadata name (refused: SSRF, see docs/security.md)");
  }
  if (IsIpLiteral(*host)) {
    if (IsPrivateAddress(*host)) {
      return BadEndpoint(
          "the endpoint's address is loopback, private, link-local or otherwise not public (refused: SSRF, see "
          "docs/security.md)");
    }
    return absl::OkStatus();
  }
  auto addresses = resolve(*host);
  if (!addresses.ok() || addresses->empty()) return BadEndpoint("the endpoint's host name does not resolve");
  for (const std::string& a : *addresses) {
    if (IsPrivateAddress(a)) {
      return BadEndpoint(
          "the endpoint's host resolves to a loopback, private, link-local or otherwise not public address "
          "(refused: SSRF, see docs/security.md)");
    }
  }
  return absl::OkStatus();
}

Subscriptions::Subscriptions(storage::Store* store, SubscriptionsOptions options)
    : store_(store), options_(std::move(options)) {}

absl::Status Subscriptions::Validate(const Subscription& s) const {
  if (auto st = ValidateTopicAndFilters(s); !st.ok()) return st;
  if (auto st = CheckEndpoint(s.endpoint(), options_.allow_private_endpoints, options_.resolve); !st.ok()) {
    return InvalidField("endpoint", std::string(st.message()));
  }
  if (auto st = ValidateHeaders(s); !st.ok()) return st;
  FieldViolations v;
  if (s.status() == Subscription::ERROR) {
    v.Add("status", "a client may set status requested (or active: the handshake decides) or off, not error");
  }
  if (s.payload() == Subscription::PAYLOAD_UNSPECIFIED) v.Add("payload", "the payload content is required");
  if (s.heartbeat_period_seconds() < 0) v.Add("heartbeat_period_seconds", "must not be negative");
  if (s.timeout_seconds() < 0) v.Add("timeout_seconds", "must not be negative");
  if (s.max_count() < 0) v.Add("max_count", "must not be negative");
  if (s.reason().empty()) v.Add("reason", "the reason is required");
  return v.ToStatus();
}

absl::Status Subscriptions::Authorize(Subscription* s, const CallContext& ctx) const {
  s->clear_owner_subject();
  s->clear_owner_client_id();
  s->clear_owner_patient();
  s->clear_readable_kinds();
  s->set_auth_disabled(ctx.principal == nullptr);
  if (ctx.principal == nullptr) return absl::OkStatus();
  const auth::Principal& p = *ctx.principal;
  const SubscriptionTopic& topic = *FindSubscriptionTopic(s->topic());
  bool confined = false;
  for (absl::string_view type : DeliverableTypes(*s, topic)) {
    if (auth::Authorize(p, type, auth::kRead, "") == auth::Decision::kAllow) continue;
    if (p.patient.has_value() && auth::Authorize(p, type, auth::kRead, *p.patient) == auth::Decision::kAllow) {
      confined = true;
      continue;
    }
    return absl::PermissionDeniedError(
        absl::StrCat("the access token cannot read ", type, ", which this subscription's topic delivers"));
  }
  if (confined) {
    for (const storage::SubscriptionFilter& f : s->filters()) {
      if (f.name() != "patient") continue;
      for (absl::string_view v : absl::StrSplit(f.value(), ',')) {
        if (PatientOfFilterValue(v) != *p.patient) {
          return absl::PermissionDeniedError(
              "the access token's patient scopes reach only their patient: filter on patient=Patient/<the token's "
              "patient>, or leave the patient filter out");
        }
      }
    }
    s->set_owner_patient(*p.patient);
  }
  s->set_owner_subject(p.subject);
  s->set_owner_client_id(p.client_id);
  for (storage::Kind kind : {storage::WHAT_MATTERS, storage::GOAL, storage::PREFERENCE, storage::PRIORITIES,
                             storage::GOAL_SCORE, storage::PATIENT}) {
    if (auth::Authorize(p, FhirTypeOf(kind), auth::kRead, s->owner_patient()) == auth::Decision::kAllow) {
      s->add_readable_kinds(kind);
    }
  }
  return absl::OkStatus();
}

bool Subscriptions::MaySee(const Subscription& s, const CallContext& ctx) const {
  if (ctx.principal == nullptr) return true;
  const auth::Principal& p = *ctx.principal;
  if (!s.auth_disabled() && s.owner_subject() == p.subject && s.owner_client_id() == p.client_id) return true;
  return SystemScopeOnSubscriptions(p, auth::kRead);
}

absl::StatusOr<std::optional<Record>> Subscriptions::Get(absl::string_view id) const {
  return store_->NewReader()->GetCurrent(storage::SUBSCRIPTION, "", id);
}

absl::Status Subscriptions::ForEach(absl::FunctionRef<bool(const Record&)> visit) const {
  return store_->NewReader()->ScanCurrent("", storage::SUBSCRIPTION, "", visit);
}

absl::StatusOr<Record> Subscriptions::Visible(absl::string_view id, const CallContext& ctx) const {
  const absl::Status not_found = absl::NotFoundError(NotFoundMessage("Subscription", id));
  if (!IsValidId(id)) return not_found;
  auto current = Get(id);
  if (!current.ok()) return current.status();
  if (!current->has_value()) return not_found;
  auto s = ParseSubscription(**current);
  if (!s.ok()) return s.status();
  if (!MaySee(*s, ctx)) return not_found;
  return std::move(**current);
}

void Subscriptions::Create(Subscription s, const CallContext& ctx, Done<Record> done) {
  if (auto st = Validate(s); !st.ok()) return done(st);
  if (auto st = Authorize(&s, ctx); !st.ok()) return done(st);
  s.set_status(*StatusFromClient(s.status(), Subscription::STATUS_UNSPECIFIED));
  s.clear_error();
  storage::Mutation m;
  m.kind = storage::SUBSCRIPTION;
  m.id = NewResourceId(absl::Now());
  m.new_id = true;
  m.op = storage::Change::CREATE;
  m.deadline = ctx.deadline;
  m.apply = [s = std::move(s)](const Record* current, const storage::WriteStamp&, Record* next) {
    if (current != nullptr) return absl::AbortedError("generated id collided; retry");
    next->set_resource(s.SerializeAsString());
    return absl::OkStatus();
  };
  store_->Commit(std::move(m), [done = std::move(done)](absl::StatusOr<storage::Committed> c) mutable {
    if (!c.ok()) return done(c.status());
    done(std::move(c->record));
  });
}

void Subscriptions::Update(absl::string_view id, Subscription s, std::optional<int64_t> if_version,
                           const CallContext& ctx, Done<Record> done) {
  auto visible = Visible(id, ctx);
  if (!visible.ok()) return done(visible.status());
  if (auto st = Validate(s); !st.ok()) return done(st);
  if (auto st = Authorize(&s, ctx); !st.ok()) return done(st);
  storage::Mutation m;
  m.kind = storage::SUBSCRIPTION;
  m.id = std::string(id);
  m.op = storage::Change::UPDATE;
  m.deadline = ctx.deadline;
  m.apply = [s = std::move(s), if_version, id = m.id](const Record* current, const storage::WriteStamp&,
                                                      Record* next) mutable -> absl::Status {
    if (current == nullptr) return absl::NotFoundError(NotFoundMessage("Subscription", id));
    if (current->retracted()) return absl::FailedPreconditionError("the subscription was deleted");
    if (if_version.has_value() && *if_version != current->version()) {
      return absl::AbortedError(
          absl::StrCat("version ", *if_version, " is stale: the subscription is at version ", current->version()));
    }
    auto stored = ParseSubscription(*current);
    if (!stored.ok()) return stored.status();
    if (stored->topic() != s.topic()) return InvalidField("topic", "a subscription's topic cannot change");
    // The owner and its read limits stay those of the creator.
    s.set_owner_subject(stored->owner_subject());
    s.set_owner_client_id(stored->owner_client_id());
    s.set_owner_patient(stored->owner_patient());
    *s.mutable_readable_kinds() = stored->readable_kinds();
    s.set_auth_disabled(stored->auth_disabled());
    auto status = StatusFromClient(s.status(), stored->status());
    if (!status.has_value()) return InvalidField("status", "a client may set status requested or off");
    // A new endpoint needs a new handshake.
    if (*status == Subscription::ACTIVE && s.endpoint() != stored->endpoint()) *status = Subscription::REQUESTED;
    if (auto st = RestoreMaskedHeaders(*stored, &s); !st.ok()) return st;
    s.set_status(*status);
    s.set_error(*status == Subscription::ERROR ? stored->error() : "");
    next->set_resource(s.SerializeAsString());
    return absl::OkStatus();
  };
  store_->Commit(std::move(m), [done = std::move(done)](absl::StatusOr<storage::Committed> c) mutable {
    if (!c.ok()) return done(c.status());
    done(std::move(c->record));
  });
}

void Subscriptions::Delete(absl::string_view id, std::optional<int64_t> if_version, const CallContext& ctx,
                           Done<Record> done) {
  auto visible = Visible(id, ctx);
  if (!visible.ok()) return done(visible.status());
  storage::Mutation m;
  m.kind = storage::SUBSCRIPTION;
  m.id = std::string(id);
  m.op = storage::Change::RETRACT;
  m.deadline = ctx.deadline;
  m.apply = [if_version, id = m.id](const Record* current, const storage::WriteStamp&, Record* next) -> absl::Status {
    if (current == nullptr) return absl::NotFoundError(NotFoundMessage("Subscription", id));
    if (current->retracted()) return absl::FailedPreconditionError("the subscription is already deleted");
    if (if_version.has_value() && *if_version != current->version()) {
      return absl::AbortedError(
          absl::StrCat("version ", *if_version, " is stale: the subscription is at version ", current->version()));
    }
    auto s = ParseSubscription(*current);
    if (!s.ok()) return s.status();
    s->set_status(Subscription::OFF);
    next->set_resource(s->SerializeAsString());
    next->set_retracted(true);
    return absl::OkStatus();
  };
  store_->Commit(std::move(m), [done = std::move(done)](absl::StatusOr<storage::Committed> c) mutable {
    if (!c.ok()) return done(c.status());
    done(std::move(c->record));
  });
}

absl::StatusOr<Record> Subscriptions::Read(absl::string_view id, const CallContext& ctx) const {
  return Visible(id, ctx);
}

absl::StatusOr<std::vector<Record>> Subscriptions::History(absl::string_view id, const CallContext& ctx) const {
  auto visible = Visible(id, ctx);
  if (!visible.ok()) return visible.status();
  std::vector<Record> out;
  auto st = store_->NewReader()->ScanVersions(storage::SUBSCRIPTION, "", id, 0, [&](const Record& r) {
    out.push_back(r);
    return true;
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<SubscriptionPage> Subscriptions::Search(const SubscriptionQuery& q, const CallContext& ctx) const {
  SubscriptionPage page;
  absl::Status failed;
  size_t walked = 0;
  auto st = store_->NewReader()->ScanCurrent("", storage::SUBSCRIPTION, q.after_id, [&](const Record& r) {
    if (++walked % 256 == 0 && absl::Now() > ctx.deadline) {
      failed = absl::DeadlineExceededError("subscription search");
      return false;
    }
    if (r.retracted() || (!q.id.empty() && r.id() != q.id)) return true;
    auto s = ParseSubscription(r);
    if (!s.ok()) {
      failed = s.status();
      return false;
    }
    if (!MaySee(*s, ctx)) return true;
    if (q.status.has_value() && s->status() != *q.status) return true;
    if (!q.topic.empty() && s->topic() != q.topic.substr(0, q.topic.find('|'))) return true;
    if (page.records.size() == q.limit) {
      page.next_after_id = page.records.back().id();
      return false;
    }
    page.records.push_back(r);
    return true;
  });
  if (!st.ok()) return st;
  if (!failed.ok()) return failed;
  return page;
}

void Subscriptions::SetStatus(absl::string_view id, Subscription::Status status, std::string error,
                              absl::AnyInvocable<void(absl::Status)> done) {
  storage::Mutation m;
  m.kind = storage::SUBSCRIPTION;
  m.id = std::string(id);
  m.op = storage::Change::UPDATE;
  m.apply = [status, error = std::move(error), id = m.id](const Record* current, const storage::WriteStamp&,
                                                          Record* next) -> absl::Status {
    if (current == nullptr) return absl::NotFoundError(NotFoundMessage("Subscription", id));
    if (current->retracted()) return absl::FailedPreconditionError("the subscription was deleted");
    auto s = ParseSubscription(*current);
    if (!s.ok()) return s.status();
    s->set_status(status);
    s->set_error(error);
    next->set_resource(s->SerializeAsString());
    return absl::OkStatus();
  };
  store_->Commit(std::move(m),
                 [done = std::move(done)](absl::StatusOr<storage::Committed> c) mutable { done(c.status()); });
}

}  // namespace wmty::domain
