#include "ehr_plugin.h"

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "common/status.h"  // GetFieldViolations, RetryDelayOf (installed with the client library)

namespace wmty::ehr_example {
namespace {

// ---------------------------------------------------------------- text helpers

// "GOAL_ACTIVE" -> "active", "COMMUNICATION_CHANNELS" -> "communication channels".
std::string Humanize(absl::string_view enum_name, absl::string_view drop_prefix = "") {
  std::string s = absl::AsciiStrToLower(absl::StripPrefix(enum_name, drop_prefix));
  std::replace(s.begin(), s.end(), '_', ' ');
  return s;
}

std::string Capitalized(std::string s) {
  if (!s.empty()) s[0] = absl::ascii_toupper(s[0]);
  return s;
}

// The patient's words, quoted, with later lines indented under the card's margin.
std::string Quoted(absl::string_view text) {
  std::string t = absl::StrReplaceAll(text, {{"\r\n", "\n"}, {"\r", "\n"}});
  return absl::StrCat("\"", absl::StrReplaceAll(absl::StripTrailingAsciiWhitespace(t), {{"\n", "\n|        "}}), "\"");
}

std::string CardTime(absl::Time t) { return absl::FormatTime("%Y-%m-%d %H:%M UTC", t, absl::UTCTimeZone()); }

absl::Time ToTime(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

// Who said it; "not stated" when the source did not say (never assume the patient).
std::string SpeakerText(const v1::Speaker& s) {
  switch (s.kind()) {
    case v1::Speaker::PATIENT:
      return "the patient";
    case v1::Speaker::RELATED_PERSON:
      return absl::StrCat(s.name(), " (", s.relationship(), ")");
    case v1::Speaker::PRACTITIONER:
      return s.name().empty() ? s.practitioner_id() : absl::StrCat(s.name(), " (", s.practitioner_id(), ")");
    default:
      return "not stated";
  }
}

// "Ana Ruiz, RN (rn-17)", or the bare id without a display name.
std::string RecorderText(const v1::Recorder& r) {
  if (r.display_name().empty()) return r.practitioner_id();
  return absl::StrCat(r.display_name(), r.role().empty() ? "" : ", ", r.role(), " (", r.practitioner_id(), ")");
}

// "said by the patient on 2026-11-20 14:03 UTC; recorded by Ana Ruiz, RN (rn-17)", and
// "...; recorded by rn-17 via ehr-plugin" when a client recorded it on a user's behalf.
std::string ProvenanceLine(const v1::Provenance& p) {
  std::string line = absl::StrCat("said by ", SpeakerText(p.said_by()));
  if (p.has_said_time()) absl::StrAppend(&line, " on ", CardTime(ToTime(p.said_time())));
  if (p.has_on_behalf_of()) {
    absl::StrAppend(&line, "; recorded by ", RecorderText(p.on_behalf_of()), " via ", RecorderText(p.recorded_by()));
  } else {
    absl::StrAppend(&line, "; recorded by ", RecorderText(p.recorded_by()));
  }
  return line;
}

// The rank the patient gave a resource ("#1  "), or blanks of the same width.
std::string RankMark(const std::map<std::string, int>& ranks, const std::string& name) {
  auto it = ranks.find(name);
  return it == ranks.end() ? "    " : absl::StrCat("#", it->second, it->second < 10 ? "  " : " ");
}

std::string GoalStatus(const v1::Goal& g) {
  std::vector<std::string> parts = {Humanize(v1::GoalLifecycleStatus_Name(g.lifecycle_status()), "GOAL_")};
  if (g.achievement_status() != v1::GOAL_ACHIEVEMENT_STATUS_UNSPECIFIED) {
    parts.push_back(Humanize(v1::GoalAchievementStatus_Name(g.achievement_status())));
  }
  if (g.priority() != v1::GOAL_PRIORITY_UNSPECIFIED) parts.push_back(Humanize(v1::GoalPriority_Name(g.priority())));
  std::string status = absl::StrJoin(parts, ", ");
  if (!g.target_date().empty()) absl::StrAppend(&status, "; target ", g.target_date());
  return status;
}

// The structured part of a preference, if any, e.g. "SMS > phone call".
std::string PreferenceDetail(const v1::Preference& p) {
  switch (p.detail_case()) {
    case v1::Preference::kChannelRanking: {
      std::vector<std::string> channels;
      for (int c : p.channel_ranking().channels()) {
        channels.push_back(Humanize(v1::ContactChannel_Name(static_cast<v1::ContactChannel>(c))));
      }
      return absl::StrJoin(channels, " > ");
    }
    case v1::Preference::kContactWindow: {
      const v1::ContactTimeWindow& w = p.contact_window();
      return absl::StrCat("ISO weekdays ", absl::StrJoin(w.days_of_week(), ","), " ", w.start_time(), "-", w.end_time(),
                          " ", w.time_zone());
    }
    case v1::Preference::kLanguage:
      return absl::StrCat(p.language().language(), p.language().interpreter_needed() ? ", interpreter needed" : "");
    case v1::Preference::kFamilyInvolvement: {
      const v1::FamilyInvolvement& f = p.family_involvement();
      std::string s = absl::StrCat("involve ", f.person_name());
      if (!f.relationship().empty()) absl::StrAppend(&s, " (", f.relationship(), ")");
      if (!f.how().empty()) absl::StrAppend(&s, ": ", f.how());
      return s;
    }
    case v1::Preference::DETAIL_NOT_SET:
      break;
  }
  return "";
}

}  // namespace

bool IsTransient(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kCancelled:
      return true;
    default:
      return false;
  }
}

std::string DescribeError(const absl::Status& status) {
  std::string out = absl::StrCat(absl::StatusCodeToString(status.code()), ": ", status.message(), "\n");
  // Keep the BadRequest in a variable: looping over a member of a temporary dangles.
  const google::rpc::BadRequest bad = GetFieldViolations(status);
  for (const auto& v : bad.field_violations()) absl::StrAppend(&out, "  ", v.field(), ": ", v.description(), "\n");
  if (auto delay = RetryDelayOf(status)) {
    absl::StrAppend(&out, "  the server asks to retry after ", absl::FormatDuration(*delay), "\n");
  }
  return out;
}

// ---------------------------------------------------------------- chart open

absl::StatusOr<v1::PatientSummary> FetchSummary(client::Client& client, const std::string& patient,
                                                absl::Time deadline) {
  v1::GetPatientSummaryRequest req;
  req.set_parent(absl::StrCat("patients/", patient));
  // What is left of the budget. Already spent (<= 0): the client library
  // answers DEADLINE_EXCEEDED without sending anything.
  return client.GetPatientSummary(req, deadline - absl::Now());
}

std::string RenderCard(const std::string& patient, const v1::PatientSummary& summary, absl::Time as_of) {
  // Rank of each resource the patient put in their priorities (1 = most important).
  std::map<std::string, int> ranks;
  for (int i = 0; i < summary.priorities().items_size(); ++i) ranks[summary.priorities().items(i)] = i + 1;

  std::string card = absl::StrCat("+-- What matters to patient ", patient, " (as of ", CardTime(as_of), ")\n");
  if (summary.what_matters().empty() && summary.goals().empty() && summary.preferences().empty()) {
    absl::StrAppend(&card, "| Nothing recorded yet. Ask: \"What matters to you?\"\n+--\n");
    return card;
  }
  // The summary already lists each kind in priority order: ranked items first
  // (in rank order), then the rest, most recently changed first.
  if (!summary.what_matters().empty()) {
    absl::StrAppend(&card, "| WHAT MATTERS (in their own words; #n = the patient's priority rank)\n");
    for (const v1::WhatMatters& w : summary.what_matters()) {
      absl::StrAppend(&card, "| ", RankMark(ranks, w.name()), Quoted(w.statement()), "\n");
      absl::StrAppend(&card, "|        ", ProvenanceLine(w.provenance()), "\n");
    }
  }
  if (!summary.goals().empty()) {
    absl::StrAppend(&card, "| GOALS\n");
    for (const v1::Goal& g : summary.goals()) {
      absl::StrAppend(&card, "| ", RankMark(ranks, g.name()), Quoted(g.description()), "\n");
      absl::StrAppend(&card, "|        ", GoalStatus(g), "\n");
      absl::StrAppend(&card, "|        ", ProvenanceLine(g.provenance()), "\n");
    }
  }
  if (!summary.preferences().empty()) {
    absl::StrAppend(&card, "| PREFERENCES\n");
    for (const v1::Preference& p : summary.preferences()) {
      std::vector<std::string> value;
      if (!p.value_text().empty()) value.push_back(Quoted(p.value_text()));
      if (!p.value_code().code().empty()) {
        value.push_back(p.value_code().display().empty() ? p.value_code().code() : p.value_code().display());
      }
      if (std::string detail = PreferenceDetail(p); !detail.empty()) value.push_back(detail);
      absl::StrAppend(&card, "| ", RankMark(ranks, p.name()), Capitalized(Humanize(v1::PreferenceKind_Name(p.kind()))),
                      ": ", absl::StrJoin(value, "; "), "\n");
      absl::StrAppend(&card, "|        ", ProvenanceLine(p.provenance()), "\n");
    }
  }
  if (summary.truncated())
    absl::StrAppend(&card, "| (more entries exist than a summary holds: open the full record)\n");
  absl::StrAppend(&card, "+--\n");
  return card;
}

std::string RenderDegradedCard(const std::string& patient, const absl::Status& status) {
  std::string why;
  switch (status.code()) {
    case absl::StatusCode::kDeadlineExceeded:
      why = "no answer in time";
      break;
    case absl::StatusCode::kUnavailable:
      why = "the service cannot be reached";
      break;
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kCancelled:
      why = "the service is busy";
      break;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      why = "not authorized";
      break;
    default:
      why = "error";
  }
  return absl::StrCat("+-- What matters to patient ", patient, "\n| what-matters unavailable (", why, ": ",
                      absl::StatusCodeToString(status.code()), "). Ask the patient what matters to them.\n+--\n");
}

// ---------------------------------------------------------------- recording

v1::CreatePreferenceRequest BuildPreferenceRequest(const PreferenceInput& in) {
  v1::CreatePreferenceRequest req;
  req.set_parent(absl::StrCat("patients/", in.patient));
  // Our own id rather than the client library's: we print it, so that an
  // unclear outcome (deadline exceeded) can be settled by sending it again.
  req.set_request_id(in.request_id.empty() ? client::NewRequestId() : in.request_id);
  v1::Preference* p = req.mutable_preference();
  p->set_kind(in.kind);
  p->set_value_text(in.text);
  // Provenance is required on every write: who said it, where, and for whom
  // the plugin records it. Who recorded it the server takes from the token.
  v1::Provenance* prov = p->mutable_provenance();
  if (!in.on_behalf_of.empty()) prov->mutable_on_behalf_of()->set_practitioner_id(in.on_behalf_of);
  if (in.said_by_name.empty() && in.said_by_relationship.empty()) {
    prov->mutable_said_by()->set_kind(v1::Speaker::PATIENT);
  } else {
    // A family member (or other related person) speaking for the patient. The
    // server requires both name and relationship and says so if one is missing.
    prov->mutable_said_by()->set_kind(v1::Speaker::RELATED_PERSON);
    prov->mutable_said_by()->set_name(in.said_by_name);
    prov->mutable_said_by()->set_relationship(in.said_by_relationship);
  }
  prov->set_encounter_id(in.encounter_id);
  prov->set_channel(v1::EHR_PLUGIN);
  // said_time is left out: the server sets it to the time it records the write.
  return req;
}

absl::StatusOr<v1::Preference> RecordPreference(client::Client& client, const v1::CreatePreferenceRequest& req,
                                                absl::Duration deadline) {
  return client.CreatePreference(req, deadline);
}

// ---------------------------------------------------------------- following

std::map<std::string, int64_t> Versions(const v1::PatientSummary& summary) {
  std::map<std::string, int64_t> v;
  v[summary.priorities().name()] = summary.priorities().version();  // a reorder changes its version
  for (const auto& w : summary.what_matters()) v[w.name()] = w.version();
  for (const auto& g : summary.goals()) v[g.name()] = g.version();
  for (const auto& p : summary.preferences()) v[p.name()] = p.version();
  if (summary.truncated()) v["(truncated)"] = 1;
  return v;
}

namespace {

// "2 added, 1 changed, 0 removed" between two Versions().
std::string DescribeChange(const std::map<std::string, int64_t>& before, const std::map<std::string, int64_t>& after) {
  int added = 0, changed = 0, removed = 0;
  for (const auto& [name, version] : after) {
    auto it = before.find(name);
    if (it == before.end()) {
      ++added;
    } else if (it->second != version) {
      ++changed;
    }
  }
  for (const auto& [name, version] : before) removed += after.count(name) == 0 ? 1 : 0;
  return absl::StrCat(added, " added, ", changed, " changed, ", removed, " removed");
}

}  // namespace

namespace {

// Follow's state: the card on screen and what it shows, across watches.
class Follower {
 public:
  Follower(client::Client& client, const FollowOptions& options, std::FILE* out, std::FILE* err)
      : client_(client), options_(options), out_(out), err_(err) {}

  // Watches until a limit is reached or the server refuses: the exit code.
  int Run() {
    const absl::Time stop =
        options_.exit_after > absl::ZeroDuration() ? absl::Now() + options_.exit_after : absl::InfiniteFuture();
    for (;;) {  // one watch per pass; another only after missed changes (OUT_OF_RANGE)
      std::unique_ptr<client::Watcher> watch = client_.WatchChanges(WatchOptions());
      int code = kGoOn;
      while (code == kGoOn) {
        absl::StatusOr<v1::WatchChangesResponse> m = watch->Next(stop - absl::Now());
        code = m.ok() ? Take(*m) : Ended(m.status());
      }
      if (code != kAgain) return code;
    }
  }

 private:
  static constexpr int kAgain = -1;  // watch again from a fresh summary
  static constexpr int kGoOn = -2;   // keep watching: no exit code yet

  client::WatchOptions WatchOptions() {
    client::WatchOptions w;
    w.parent = absl::StrCat("patients/", options_.patient);
    // What the card shows; the summary comes first, then its changes.
    w.kinds = {v1::RESOURCE_KIND_WHAT_MATTERS, v1::RESOURCE_KIND_GOAL, v1::RESOURCE_KIND_PREFERENCE,
               v1::RESOURCE_KIND_PRIORITIES};
    w.include_summary = true;
    w.heartbeat_interval = options_.heartbeat;
    w.on_retry = [this](const absl::Status& why, absl::Duration delay) { Outage(why, delay); };
    return w;
  }

  // The watcher lost the server and reconnects by itself (resuming where it
  // was): keep the card, say once per outage that it may be stale.
  void Outage(const absl::Status& why, absl::Duration delay) {
    if (in_outage_) return;
    in_outage_ = true;
    if (!have_card_) {
      std::fputs(RenderDegradedCard(options_.patient, why).c_str(), out_);
      std::fflush(out_);
    }
    std::fprintf(err_, "follow: what-matters unavailable, reconnecting (first try in %s): %s",
                 absl::FormatDuration(delay).c_str(), DescribeError(why).c_str());
  }

  int Take(const v1::WatchChangesResponse& m) {
    if (in_outage_) {
      std::fprintf(err_, "follow: reconnected, no change missed\n");
      in_outage_ = false;
    }
    if (m.has_summary()) return Show(m.summary().summary());
    if (m.has_heartbeat()) {
      if (options_.log_events) {
        std::fprintf(err_, "follow: heartbeat, caught up to %llu\n",
                     static_cast<unsigned long long>(m.heartbeat().head_sequence()));
      }
      return stale_ ? Refresh() : kGoOn;  // a summary read that failed is tried again
    }
    if (!m.has_change()) return kGoOn;
    const v1::ChangeEvent& c = m.change();
    if (Shows(c)) {
      if (options_.log_events) std::fprintf(err_, "follow: change %s already on the card\n", Describe(c).c_str());
      return kGoOn;
    }
    if (options_.log_events) std::fprintf(err_, "follow: change %s, reading the summary\n", Describe(c).c_str());
    return Refresh();
  }

  // Whether the card already shows what change `c` wrote (the summary read
  // after an earlier change may have shown it already).
  bool Shows(const v1::ChangeEvent& c) const {
    auto it = shown_.find(c.name());
    if (c.operation() == v1::ChangeEvent::RETRACT) return it == shown_.end();
    return it != shown_.end() && it->second >= c.version();
  }

  // PHI-free: sequence, operation and resource name.
  static std::string Describe(const v1::ChangeEvent& c) {
    return absl::StrCat(c.sequence(), " (", absl::AsciiStrToLower(v1::ChangeEvent::Operation_Name(c.operation())), " ",
                        c.name(), " version ", c.version(), ")");
  }

  // Reads the summary again after a change. A transient failure keeps the
  // card and is retried on the next message (a heartbeat at the latest).
  int Refresh() {
    absl::StatusOr<v1::PatientSummary> summary =
        FetchSummary(client_, options_.patient, absl::Now() + options_.deadline);
    if (summary.ok()) {
      stale_ = false;
      return Show(*summary);
    }
    if (!IsTransient(summary.status())) return Refused(summary.status());
    if (!stale_) {
      std::fprintf(err_,
                   "follow: the card may be stale, reading the summary failed (retried with the next message): %s",
                   DescribeError(summary.status()).c_str());
    }
    stale_ = true;
    return kGoOn;
  }

  // Prints the card if it differs from the one shown.
  int Show(const v1::PatientSummary& summary) {
    std::map<std::string, int64_t> now = Versions(summary);
    if (have_card_ && now == shown_) return kGoOn;
    if (have_card_) {
      ++updates_;
      std::fprintf(out_, "* updated: %s\n", DescribeChange(shown_, now).c_str());
    }
    std::fputs(RenderCard(options_.patient, summary, absl::Now()).c_str(), out_);
    std::fflush(out_);  // the host reads cards as they come
    shown_ = std::move(now);
    have_card_ = true;
    return options_.max_updates > 0 && updates_ >= options_.max_updates ? kExitOk : kGoOn;
  }

  // The watch ended: the time limit, missed changes, or a refusal.
  int Ended(const absl::Status& status) {
    if (status.code() == absl::StatusCode::kDeadlineExceeded) return kExitOk;  // --exit_after
    if (status.code() == absl::StatusCode::kOutOfRange) {
      std::fprintf(err_, "follow: changes were missed (the server's change log moved on): reading the summary again\n");
      return kAgain;
    }
    return Refused(status);
  }

  int Refused(const absl::Status& status) {
    if (!have_card_) {
      std::fputs(RenderDegradedCard(options_.patient, status).c_str(), out_);
      std::fflush(out_);
    }
    std::fprintf(err_, "follow: the server refused: %s", DescribeError(status).c_str());
    return kExitRefused;
  }

  client::Client& client_;
  const FollowOptions& options_;
  std::FILE* const out_;
  std::FILE* const err_;
  std::map<std::string, int64_t> shown_;  // versions on the card last printed
  bool have_card_ = false;
  bool in_outage_ = false;  // reported the current outage already
  bool stale_ = false;      // a summary read after a change failed
  int updates_ = 0;
};

}  // namespace

int Follow(client::Client& client, const FollowOptions& options, std::FILE* out, std::FILE* err) {
  return Follower(client, options, out, err).Run();
}

}  // namespace wmty::ehr_example
