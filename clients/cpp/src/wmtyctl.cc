// wmtyctl: command-line client of every RPC of wmty.v1.WhatMattersService.
//
//   wmtyctl [--target=host:port] [--token=JWT] [--timeout=5s] [--json] <command> [--field.path=value ...]
//
// Commands are the RPC names in kebab-case (CreateGoal -> create-goal). Request
// fields are set through protobuf reflection from flags named by their dotted
// field path, so the tool follows the proto without per-command code: a field
// added to the API is settable (and listed in `<command> --help`) as soon as
// wmtyctl is rebuilt. Calls go through wmty::client::Client, which fills an
// empty request_id and retries UNAVAILABLE.
//
// `wmtyctl admin ...` (backups) and `wmtyctl watch` (the change feed, a
// stream) are separate: see wmtyctl_admin.h and wmtyctl_watch.h.
//
// Exit status: 0 ok, 1 the call failed, 2 usage error.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/duration.pb.h>
#include <google/protobuf/field_mask.pb.h>
#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "wmty/client/client.h"
#include "wmty/v1/service.pb.h"
#include "wmtyctl_admin.h"
#include "wmtyctl_watch.h"

namespace wmty::ctl {
namespace {

using client::Client;
using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::MethodDescriptor;
using google::protobuf::Reflection;
using google::protobuf::util::TimeUtil;

constexpr int kExitOk = 0;
constexpr int kExitRpcFailed = 1;
constexpr int kExitUsage = 2;

// Usage errors travel as absl::Status internally; this code marks them so they
// cannot be confused with an RPC's INVALID_ARGUMENT.
absl::Status UsageError(absl::string_view message) { return absl::FailedPreconditionError(message); }

// ---------------------------------------------------------------- commands

using RunFn = std::function<absl::StatusOr<std::unique_ptr<Message>>(Client&, const Message&, Client::Timeout)>;

struct Command {
  std::string name;  // kebab-case, e.g. "create-goal"
  const MethodDescriptor* rpc;
  const char* summary;
  const char* example;
  RunFn run;
};

const google::protobuf::ServiceDescriptor* Service() {
  return v1::GetResourceRequest::descriptor()->file()->FindServiceByName("WhatMattersService");
}

std::string KebabCase(absl::string_view camel) {
  std::string out;
  for (char c : camel) {
    if (absl::ascii_isupper(c) && !out.empty()) out.push_back('-');
    out.push_back(absl::ascii_tolower(c));
  }
  return out;
}

// Binds a Client method (which takes its request by value or by const
// reference) to the generic RunFn; the request type is taken from the method,
// so a mismatch with the service descriptor is caught below.
template <class Resp, class Arg>
Command MakeCommand(const char* method, const char* summary, const char* example,
                    absl::StatusOr<Resp> (Client::*call)(Arg, Client::Timeout)) {
  using Req = std::decay_t<Arg>;
  const MethodDescriptor* rpc = Service()->FindMethodByName(method);
  if (rpc == nullptr || rpc->input_type() != Req::descriptor() || rpc->output_type() != Resp::descriptor()) {
    std::fprintf(stderr, "wmtyctl: internal error: %s does not match the service descriptor\n", method);
    std::abort();
  }
  RunFn run = [call](Client& c, const Message& req, Client::Timeout t) -> absl::StatusOr<std::unique_ptr<Message>> {
    auto resp = (c.*call)(static_cast<const Req&>(req), t);
    if (!resp.ok()) return resp.status();
    return std::unique_ptr<Message>(std::make_unique<Resp>(*std::move(resp)));
  };
  return Command{KebabCase(method), rpc, summary, example, std::move(run)};
}

#define WMTY_COMMAND(Method, summary, example) MakeCommand(#Method, summary, example, &Client::Method)

// Shown in the examples: the provenance every create and update requires.
// Who recorded it is the token's user (set by the server); only who said it
// is given.
#define WMTY_PROV(prefix) " --" prefix ".provenance.said_by.kind=PATIENT"

const std::vector<Command>& Commands() {
  static const auto* commands = new std::vector<Command>{
      WMTY_COMMAND(CreateWhatMatters, "Record what matters to the patient, in their own words.",
                   "wmtyctl create-what-matters --parent=patients/p1 "
                   "--what_matters.statement=\"Being home for my garden\" "
                   "--what_matters.life_domains=HOME_AND_DAILY_LIFE" WMTY_PROV("what_matters")),
      WMTY_COMMAND(GetWhatMatters, "Get one what-matters entry by name.",
                   "wmtyctl get-what-matters --name=patients/p1/whatMatters/01J0000000000000000000000"),
      WMTY_COMMAND(ListWhatMatters, "List a patient's current what-matters entries.",
                   "wmtyctl list-what-matters --parent=patients/p1 --life_domains=HOME_AND_DAILY_LIFE --page_size=20"),
      WMTY_COMMAND(UpdateWhatMatters, "Change a what-matters entry (needs its etag).",
                   "wmtyctl update-what-matters --what_matters.name=patients/p1/whatMatters/01J0000000000000000000000 "
                   "--what_matters.etag='W/\"1\"' --update_mask=prompt "
                   "--what_matters.prompt=\"What matters most this week?\"" WMTY_PROV("what_matters")),
      WMTY_COMMAND(RetractWhatMatters, "Mark a what-matters entry entered-in-error.",
                   "wmtyctl retract-what-matters --name=patients/p1/whatMatters/01J0000000000000000000000 "
                   "--reason=\"Wrong patient\""),
      WMTY_COMMAND(ListWhatMattersVersions, "List every version of a what-matters entry, oldest first.",
                   "wmtyctl list-what-matters-versions --name=patients/p1/whatMatters/01J0000000000000000000000"),
      WMTY_COMMAND(CreateGoal, "Record a patient-stated goal.",
                   "wmtyctl create-goal --parent=patients/p1 --goal.description=\"Walk to the mailbox\" "
                   "--goal.lifecycle_status=GOAL_ACTIVE" WMTY_PROV("goal")),
      WMTY_COMMAND(GetGoal, "Get one goal by name.",
                   "wmtyctl get-goal --name=patients/p1/goals/01J0000000000000000000000"),
      WMTY_COMMAND(ListGoals, "List a patient's current goals.",
                   "wmtyctl list-goals --parent=patients/p1 --lifecycle_statuses=GOAL_ACTIVE "
                   "--filter.updated_since=2024-01-01T00:00:00Z"),
      WMTY_COMMAND(UpdateGoal, "Change a goal (needs its etag).",
                   "wmtyctl update-goal --goal.name=patients/p1/goals/01J0000000000000000000000 --goal.etag='W/\"1\"' "
                   "--update_mask=achievement_status,priority --goal.achievement_status=IMPROVING "
                   "--goal.priority=HIGH_PRIORITY" WMTY_PROV("goal")),
      WMTY_COMMAND(RetractGoal, "Mark a goal entered-in-error.",
                   "wmtyctl retract-goal --name=patients/p1/goals/01J0000000000000000000000 "
                   "--reason=\"Duplicate entry\""),
      WMTY_COMMAND(ListGoalVersions, "List every version of a goal, oldest first.",
                   "wmtyctl list-goal-versions --name=patients/p1/goals/01J0000000000000000000000"),
      WMTY_COMMAND(CreatePreference, "Record a typed preference.",
                   "wmtyctl create-preference --parent=patients/p1 --preference.kind=COMMUNICATION_CHANNELS "
                   "--preference.channel_ranking.channels=SMS --preference.channel_ranking.channels=PHONE_CALL "
                   "--preference.value_text=\"Text me first\"" WMTY_PROV("preference")),
      WMTY_COMMAND(GetPreference, "Get one preference by name.",
                   "wmtyctl get-preference --name=patients/p1/preferences/01J0000000000000000000000"),
      WMTY_COMMAND(ListPreferences, "List a patient's current preferences.",
                   "wmtyctl list-preferences --parent=patients/p1 --kinds=LANGUAGE --kinds=PRONOUNS"),
      WMTY_COMMAND(UpdatePreference, "Change a preference (needs its etag).",
                   "wmtyctl update-preference --preference.name=patients/p1/preferences/01J0000000000000000000000 "
                   "--preference.etag='W/\"1\"' --update_mask=value_text "
                   "--preference.value_text=\"Call after 5pm\"" WMTY_PROV("preference")),
      WMTY_COMMAND(RetractPreference, "Mark a preference entered-in-error.",
                   "wmtyctl retract-preference --name=patients/p1/preferences/01J0000000000000000000000 "
                   "--reason=\"Entered for the wrong patient\""),
      WMTY_COMMAND(ListPreferenceVersions, "List every version of a preference, oldest first.",
                   "wmtyctl list-preference-versions --name=patients/p1/preferences/01J0000000000000000000000"),
      WMTY_COMMAND(CreateGoalScore, "Record a goal-attainment score (-2..+2) for a goal.",
                   "wmtyctl create-goal-score --parent=patients/p1 "
                   "--goal_score.goal=patients/p1/goals/01J0000000000000000000000 "
                   "--goal_score.score_type=PATIENT_FOLLOW_UP --goal_score.score=1" WMTY_PROV("goal_score")),
      WMTY_COMMAND(GetGoalScore, "Get one goal score by name.",
                   "wmtyctl get-goal-score --name=patients/p1/goalScores/01J0000000000000000000000"),
      WMTY_COMMAND(ListGoalScores, "List a patient's goal scores (optionally of one goal): progress over time.",
                   "wmtyctl list-goal-scores --parent=patients/p1 --goal=patients/p1/goals/01J0000000000000000000000"),
      WMTY_COMMAND(UpdateGoalScore, "Change a goal score (needs its etag).",
                   "wmtyctl update-goal-score --goal_score.name=patients/p1/goalScores/01J0000000000000000000000 "
                   "--goal_score.etag='W/\"1\"' --update_mask=score --goal_score.score=2" WMTY_PROV("goal_score")),
      WMTY_COMMAND(RetractGoalScore, "Mark a goal score entered-in-error.",
                   "wmtyctl retract-goal-score --name=patients/p1/goalScores/01J0000000000000000000000 "
                   "--reason=\"Scored the wrong goal\""),
      WMTY_COMMAND(ListGoalScoreVersions, "List every version of a goal score, oldest first.",
                   "wmtyctl list-goal-score-versions --name=patients/p1/goalScores/01J0000000000000000000000"),
      WMTY_COMMAND(GetPriorities, "Get a patient's ranked priorities (version 0 until first set).",
                   "wmtyctl get-priorities --name=patients/p1/priorities"),
      WMTY_COMMAND(UpdatePriorities, "Replace a patient's ranked priorities (etag needed once set).",
                   "wmtyctl update-priorities --priorities.name=patients/p1/priorities --priorities.etag='W/\"1\"' "
                   "--priorities.items=patients/p1/goals/01J0000000000000000000000 "
                   "--priorities.items=patients/p1/whatMatters/01J0000000000000000000000" WMTY_PROV("priorities")),
      WMTY_COMMAND(ListPrioritiesVersions, "List every version of a patient's priorities, oldest first.",
                   "wmtyctl list-priorities-versions --name=patients/p1/priorities"),
      WMTY_COMMAND(GetPatient, "Get a patient's demographics (name, birth date, identifiers such as the MRN).",
                   "wmtyctl get-patient --name=patients/p1"),
      WMTY_COMMAND(UpdatePatient, "Create or replace a patient's demographics, as the hospital's systems send them.",
                   "wmtyctl update-patient --patient.name=patients/p1 --allow_missing "
                   "--patient.names='{\"family\":\"Santos\",\"given\":[\"Maria\"]}' "
                   "--patient.birth_date=1950-03-14 --patient.identifiers='{\"system\":"
                   "\"urn:oid:2.16.840.1.113883.19.5\",\"value\":\"448812\",\"typeCode\":\"MR\"}' "
                   "--patient.provenance.recorded_by.practitioner_id=adt-feed"),
      WMTY_COMMAND(ListPatientVersions, "List every version of a patient's demographics, oldest first.",
                   "wmtyctl list-patient-versions --name=patients/p1"),
      WMTY_COMMAND(GetPatientSummary, "Everything current for a patient, ordered by their priorities.",
                   "wmtyctl get-patient-summary --parent=patients/p1"),
  };
  return *commands;
}

#undef WMTY_PROV
#undef WMTY_COMMAND

const Command* FindCommand(absl::string_view name) {
  for (const Command& c : Commands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

// ---------------------------------------------------------------- field paths

// Well-known types given on the command line as one string rather than by
// their sub-fields.
bool IsStringLike(const Descriptor* d) {
  return d == google::protobuf::Timestamp::descriptor() || d == google::protobuf::Duration::descriptor() ||
         d == google::protobuf::FieldMask::descriptor();
}

// A field whose sub-fields are addressed by dotted paths: a singular message
// that is not string-like. (Repeated messages are set whole, as JSON.)
bool HasSubPaths(const FieldDescriptor* f) {
  return f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !f->is_repeated() && !IsStringLike(f->message_type());
}

bool IsResource(const Descriptor* d) {
  return d->FindFieldByName("name") != nullptr && d->FindFieldByName("version") != nullptr &&
         d->FindFieldByName("etag") != nullptr;
}

// Fields the server sets and ignores on input: those the resources mark
// "Output only" in proto/wmty/v1/resources.proto. A resource's name and etag
// are input only where they identify the version changed (updates); in a
// create they are output only too.
bool IsOutputOnly(const FieldDescriptor* f, bool in_create) {
  if (!IsResource(f->containing_type())) return false;
  static constexpr absl::string_view kAlways[] = {"version", "create_time", "update_time", "state", "retract_reason"};
  for (absl::string_view name : kAlways) {
    if (f->name() == name) return true;
  }
  return in_create && (f->name() == "name" || f->name() == "etag");
}

bool IsCreate(const MethodDescriptor* rpc) { return absl::StartsWith(rpc->name(), "Create"); }

// The chain of fields a dotted path names, e.g. "goal.provenance.said_by.kind".
absl::StatusOr<std::vector<const FieldDescriptor*>> ResolvePath(const Descriptor* root, absl::string_view path,
                                                                bool in_create) {
  std::vector<const FieldDescriptor*> chain;
  const Descriptor* d = root;
  for (absl::string_view part : absl::StrSplit(path, '.')) {
    if (d == nullptr) {
      return UsageError(absl::StrCat("unknown field --", path, ": ", chain.back()->name(),
                                     " has no sub-fields (set it whole, e.g. as JSON)"));
    }
    const FieldDescriptor* f = d->FindFieldByName(std::string(part));
    if (f == nullptr) {
      return UsageError(absl::StrCat("unknown field --", path, ": ", d->full_name(), " has no field '", part, "'"));
    }
    if (IsOutputOnly(f, in_create)) {
      return UsageError(absl::StrCat("--", path, " is output only: the server sets it"));
    }
    chain.push_back(f);
    d = HasSubPaths(f) ? f->message_type() : nullptr;
  }
  return chain;
}

// "Speaker.Kind" for wmty.v1.Speaker.Kind: unambiguous without the package.
template <class D>
std::string ShortName(const D* d) {
  return std::string(absl::StripPrefix(d->full_name(), d->file()->package() + "."));
}

std::string EnumNames(const EnumDescriptor* e) {
  std::vector<std::string> names;
  for (int i = 0; i < e->value_count(); ++i) {
    if (e->value(i)->number() != 0) names.push_back(e->value(i)->name());
  }
  return absl::StrJoin(names, "|");
}

absl::StatusOr<int> ParseEnum(const EnumDescriptor* e, absl::string_view text) {
  if (const auto* v = e->FindValueByName(absl::AsciiStrToUpper(text))) return v->number();
  int number = 0;
  // Proto3 enums are open: any number is accepted, so the server's own check
  // of unknown values can be exercised.
  if (absl::SimpleAtoi(text, &number)) return number;
  return UsageError(absl::StrCat("'", text, "' is not a ", ShortName(e), ": one of ", EnumNames(e)));
}

// The message holding the last field of `chain`, created on the way if needed.
Message* MutableOwner(Message* root, const std::vector<const FieldDescriptor*>& chain) {
  Message* m = root;
  for (size_t i = 0; i + 1 < chain.size(); ++i) m = m->GetReflection()->MutableMessage(m, chain[i]);
  return m;
}

// Sets (or, for a repeated field, appends) `text` at the end of `chain`.
absl::Status SetField(Message* root, const std::vector<const FieldDescriptor*>& chain, const std::string& text) {
  Message* m = MutableOwner(root, chain);
  const FieldDescriptor* f = chain.back();
  const Reflection* r = m->GetReflection();
  const bool rep = f->is_repeated();
  auto bad = [&](absl::string_view what) { return UsageError(absl::StrCat("'", text, "' is not ", what)); };
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      rep ? r->AddString(m, f, text) : r->SetString(m, f, text);
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool v = false;
      if (!absl::SimpleAtob(text, &v)) return bad("a bool (true or false)");
      rep ? r->AddBool(m, f, v) : r->SetBool(m, f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t v = 0;
      if (!absl::SimpleAtoi(text, &v)) return bad("an int32");
      rep ? r->AddInt32(m, f, v) : r->SetInt32(m, f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t v = 0;
      if (!absl::SimpleAtoi(text, &v)) return bad("an int64");
      rep ? r->AddInt64(m, f, v) : r->SetInt64(m, f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      uint32_t v = 0;
      if (!absl::SimpleAtoi(text, &v)) return bad("a uint32");
      rep ? r->AddUInt32(m, f, v) : r->SetUInt32(m, f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t v = 0;
      if (!absl::SimpleAtoi(text, &v)) return bad("a uint64");
      rep ? r->AddUInt64(m, f, v) : r->SetUInt64(m, f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      double v = 0;
      if (!absl::SimpleAtod(text, &v)) return bad("a number");
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_FLOAT) {
        rep ? r->AddFloat(m, f, static_cast<float>(v)) : r->SetFloat(m, f, static_cast<float>(v));
      } else {
        rep ? r->AddDouble(m, f, v) : r->SetDouble(m, f, v);
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      auto v = ParseEnum(f->enum_type(), text);
      if (!v.ok()) return v.status();
      rep ? r->AddEnumValue(m, f, *v) : r->SetEnumValue(m, f, *v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      const Descriptor* d = f->message_type();
      std::unique_ptr<Message> v(r->GetMessageFactory()->GetPrototype(d)->New());
      if (d == google::protobuf::Timestamp::descriptor()) {
        if (!TimeUtil::FromString(text, static_cast<google::protobuf::Timestamp*>(v.get()))) {
          return bad("an RFC 3339 timestamp, e.g. 2024-05-01T09:30:00Z");
        }
      } else if (d == google::protobuf::Duration::descriptor()) {
        if (!TimeUtil::FromString(text, static_cast<google::protobuf::Duration*>(v.get()))) {
          return bad("a duration, e.g. 1.5s");
        }
      } else if (d == google::protobuf::FieldMask::descriptor()) {
        auto* mask = static_cast<google::protobuf::FieldMask*>(v.get());
        for (absl::string_view p : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
          mask->add_paths(std::string(absl::StripAsciiWhitespace(p)));
        }
      } else if (auto s = google::protobuf::util::JsonStringToMessage(text, v.get()); !s.ok()) {
        return bad(absl::StrCat("a JSON ", d->name(), ": ", s.message().ToString()));
      }
      if (rep) {
        r->AddMessage(m, f)->CopyFrom(*v);
      } else {
        r->MutableMessage(m, f)->CopyFrom(*v);
      }
      return absl::OkStatus();
    }
  }
  return bad("settable");
}

std::string TypeName(const FieldDescriptor* f) {
  std::string type;
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_ENUM) {
    type = absl::StrCat(ShortName(f->enum_type()), ": ", EnumNames(f->enum_type()));
  } else if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
    type = f->type_name();
  } else if (f->message_type() == google::protobuf::Timestamp::descriptor()) {
    type = "timestamp (RFC 3339, e.g. 2024-05-01T09:30:00Z)";
  } else if (f->message_type() == google::protobuf::Duration::descriptor()) {
    type = "duration (e.g. 1.5s)";
  } else if (f->message_type() == google::protobuf::FieldMask::descriptor()) {
    type = "field mask (comma-separated field paths)";
  } else {
    type = absl::StrCat(ShortName(f->message_type()), " as JSON");
  }
  if (f->is_repeated()) type = absl::StrCat("repeated ", type);
  if (const auto* oneof = f->real_containing_oneof(); oneof != nullptr) {
    absl::StrAppend(&type, " [oneof ", oneof->name(), "]");
  }
  return type;
}

// Every settable path under `d` with its type, in field order (output-only
// fields left out).
void ListPaths(const Descriptor* d, const std::string& prefix, int depth, bool in_create,
               std::vector<std::pair<std::string, std::string>>* out) {
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (IsOutputOnly(f, in_create)) continue;
    const std::string path = prefix + f->name();
    if (HasSubPaths(f) && depth < 8) {  // the depth bound only guards against recursive messages
      ListPaths(f->message_type(), path + ".", depth + 1, in_create, out);
    } else {
      out->emplace_back(path, TypeName(f));
    }
  }
}

// ---------------------------------------------------------------- arguments

// One --path=value field flag, its path already resolved against the request.
struct FieldFlag {
  std::string path;
  std::vector<const FieldDescriptor*> chain;
  std::string value;
};

struct Invocation {
  std::string target;
  std::string token;  // bearer token (--token, else $WMTY_TOKEN)
  TlsFiles tls;       // --tls_*; the CA defaults to $WMTY_TLS_CA_FILE
  absl::Duration timeout = absl::Seconds(5);
  bool json = false;
  bool help = false;
  const Command* command = nullptr;
  std::string help_topic;  // for "wmtyctl help <command>"
  bool help_command = false;
  std::string request_json;       // --request, already read from its file
  std::vector<FieldFlag> fields;  // in command-line order
  bool timeout_set = false;
  // "admin": the operator commands take everything after it (wmtyctl_admin.h).
  bool admin = false;
  std::vector<std::string> admin_args;
  // "watch": likewise (wmtyctl_watch.h).
  bool watch = false;
  std::vector<std::string> watch_args;
};

absl::StatusOr<std::string> ReadRequestArg(const std::string& value) {
  if (!absl::StartsWith(value, "@")) return value;
  const std::string path = value.substr(1);
  std::ostringstream buf;
  if (path == "-") {
    buf << std::cin.rdbuf();
  } else {
    std::ifstream in(path);
    if (!in) return UsageError(absl::StrCat("--request: cannot read ", path));
    buf << in.rdbuf();
  }
  return buf.str();
}

absl::StatusOr<bool> ParseBoolFlag(absl::string_view name, const std::optional<std::string>& value) {
  bool v = true;
  if (value.has_value() && !absl::SimpleAtob(*value, &v)) {
    return UsageError(absl::StrCat("--", name, ": '", *value, "' is not true or false"));
  }
  return v;
}

absl::StatusOr<Invocation> ParseArgs(const std::vector<std::string>& args) {
  Invocation inv;
  const char* env_target = std::getenv("WMTY_TARGET");
  inv.target = env_target != nullptr && *env_target != '\0' ? env_target : "127.0.0.1:50051";
  if (const char* env_token = std::getenv("WMTY_TOKEN"); env_token != nullptr) inv.token = env_token;
  if (const char* env_ca = std::getenv("WMTY_TLS_CA_FILE"); env_ca != nullptr) inv.tls.ca_file = env_ca;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h") {
      inv.help = true;
      continue;
    }
    if (!absl::StartsWith(arg, "--")) {
      if (inv.command == nullptr && !inv.help_command && arg == "admin") {
        inv.admin = true;
        inv.admin_args.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
        return inv;
      }
      if (inv.command == nullptr && !inv.help_command && arg == "watch") {
        inv.watch = true;
        inv.watch_args.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
        return inv;
      }
      if (inv.command == nullptr && !inv.help_command) {
        if (arg == "help") {
          inv.help_command = true;
        } else if ((inv.command = FindCommand(arg)) == nullptr) {
          return UsageError(absl::StrCat("unknown command '", arg, "' (run 'wmtyctl help' for the list)"));
        }
      } else if (inv.help_command && inv.help_topic.empty()) {
        inv.help_topic = arg;
      } else {
        return UsageError(absl::StrCat("unexpected argument '", arg, "': values go in --field=value flags"));
      }
      continue;
    }
    const std::string flag = arg.substr(2);
    const size_t eq = flag.find('=');
    const std::string name = flag.substr(0, eq);
    std::optional<std::string> value;
    if (eq != std::string::npos) value = flag.substr(eq + 1);
    // Flags that take a value accept "--flag value" too.
    auto take_value = [&]() -> absl::StatusOr<std::string> {
      if (value.has_value()) return *value;
      if (i + 1 >= args.size()) return UsageError(absl::StrCat("--", name, " needs a value"));
      return args[++i];
    };
    if (name == "json" || name == "help") {
      auto v = ParseBoolFlag(name, value);
      if (!v.ok()) return v.status();
      (name == "json" ? inv.json : inv.help) = *v;
    } else if (name == "target") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      inv.target = *v;
    } else if (name == "token") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      inv.token = *v;
    } else if (name == "tls_ca_file" || name == "tls_cert_file" || name == "tls_key_file") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      TakeTlsFlag(name, *v, inv.tls);
    } else if (name == "timeout") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      if (!absl::ParseDuration(*v, &inv.timeout) || inv.timeout <= absl::ZeroDuration()) {
        return UsageError(absl::StrCat("--timeout: '", *v, "' is not a positive duration such as 5s or 500ms"));
      }
      inv.timeout_set = true;
    } else if (name == "request") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      auto json = ReadRequestArg(*v);
      if (!json.ok()) return json.status();
      inv.request_json = *json;
    } else if (inv.command == nullptr) {
      return UsageError(
          absl::StrCat("unknown flag --", name, inv.help_command ? "" : " (field flags go after the command)"));
    } else {
      auto chain = ResolvePath(inv.command->rpc->input_type(), name, IsCreate(inv.command->rpc));
      if (!chain.ok()) {
        return UsageError(
            absl::StrCat(chain.status().message(), " (run 'wmtyctl ", inv.command->name, " --help' for the fields)"));
      }
      if (!value.has_value() && chain->back()->cpp_type() == FieldDescriptor::CPPTYPE_BOOL) {
        value = "true";  // a bare --flag sets a bool
      }
      auto v = take_value();
      if (!v.ok()) return v.status();
      inv.fields.push_back({name, *std::move(chain), *v});
    }
  }
  return inv;
}

absl::StatusOr<std::unique_ptr<Message>> BuildRequest(const Invocation& inv) {
  std::unique_ptr<Message> req(
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(inv.command->rpc->input_type())->New());
  if (!inv.request_json.empty()) {
    auto s = google::protobuf::util::JsonStringToMessage(inv.request_json, req.get());
    if (!s.ok()) {
      return UsageError(
          absl::StrCat("--request is not a JSON ", req->GetDescriptor()->name(), ": ", s.message().ToString()));
    }
  }
  // Flags override the JSON: a repeated field given by flags replaces the
  // JSON's list instead of appending to it.
  std::set<std::string> cleared;
  for (const FieldFlag& flag : inv.fields) {
    if (flag.chain.back()->is_repeated() && cleared.insert(flag.path).second) {
      Message* m = MutableOwner(req.get(), flag.chain);
      m->GetReflection()->ClearField(m, flag.chain.back());
    }
    if (auto s = SetField(req.get(), flag.chain, flag.value); !s.ok()) {
      return UsageError(absl::StrCat("--", flag.path, ": ", s.message()));
    }
  }
  return req;
}

// ---------------------------------------------------------------- output

// Text as stored: no quotes and no escapes, which would read as part of the
// patient's words. Control characters other than line breaks and tabs (the
// server never stores them), and a CR not followed by LF, are shown as \xNN,
// so text cannot drive the terminal. Line breaks stay; RenderMessage indents
// the lines after them.
std::string AsStored(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const auto u = static_cast<unsigned char>(c);
    const bool line_break = c == '\n' || (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n');
    if ((u < 0x20 && !line_break && c != '\t') || u == 0x7f) {
      absl::StrAppend(&out, absl::StrFormat("\\x%02x", u));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// `text` with every line after the first indented by `pad` plus two spaces.
std::string IndentLines(const std::string& text, const std::string& pad) {
  return absl::StrReplaceAll(text, {{"\n", absl::StrCat("\n", pad, "  ")}});
}

// One value of a field (element `i` if repeated) as text, or "" for a message
// that is not string-like (printed as a block by the caller).
std::string ValueText(const Message& m, const FieldDescriptor* f, int i) {
  const Reflection* r = m.GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      return AsStored(rep ? r->GetRepeatedString(m, f, i) : r->GetString(m, f));
    case FieldDescriptor::CPPTYPE_BOOL:
      return (rep ? r->GetRepeatedBool(m, f, i) : r->GetBool(m, f)) ? "true" : "false";
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(rep ? r->GetRepeatedInt32(m, f, i) : r->GetInt32(m, f));
    case FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(rep ? r->GetRepeatedInt64(m, f, i) : r->GetInt64(m, f));
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(rep ? r->GetRepeatedUInt32(m, f, i) : r->GetUInt32(m, f));
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(rep ? r->GetRepeatedUInt64(m, f, i) : r->GetUInt64(m, f));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return absl::StrCat(rep ? r->GetRepeatedDouble(m, f, i) : r->GetDouble(m, f));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return absl::StrCat(rep ? r->GetRepeatedFloat(m, f, i) : r->GetFloat(m, f));
    case FieldDescriptor::CPPTYPE_ENUM: {
      const int v = rep ? r->GetRepeatedEnumValue(m, f, i) : r->GetEnumValue(m, f);
      const auto* ev = f->enum_type()->FindValueByNumber(v);
      return ev != nullptr ? ev->name() : absl::StrCat(v);
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      const Message& sub = rep ? r->GetRepeatedMessage(m, f, i) : r->GetMessage(m, f);
      // Well-known types print through their JSON form (RFC 3339 etc.).
      if (!IsStringLike(sub.GetDescriptor())) return "";
      std::string json;
      (void)google::protobuf::util::MessageToJsonString(sub, &json);
      return std::string(absl::StripSuffix(absl::StripPrefix(json, "\""), "\""));
    }
  }
  return "";
}

void RenderMessage(const Message& m, int indent, std::string* out);

// "Goal patients/p1/goals/01J... (version 2, etag W/"2")", then the other fields.
void RenderResource(const Message& m, int indent, std::string* out) {
  const Descriptor* d = m.GetDescriptor();
  const Reflection* r = m.GetReflection();
  std::vector<std::string> facts = {absl::StrCat("version ", r->GetInt64(m, d->FindFieldByName("version")))};
  const std::string etag = r->GetString(m, d->FindFieldByName("etag"));
  if (!etag.empty()) facts.push_back(absl::StrCat("etag ", etag));
  if (const auto* state = d->FindFieldByName("state"); state != nullptr && r->GetEnumValue(m, state) == v1::RETRACTED) {
    facts.push_back("RETRACTED");
  }
  absl::StrAppend(out, std::string(indent, ' '), d->name(), " ", r->GetString(m, d->FindFieldByName("name")), " (",
                  absl::StrJoin(facts, ", "), ")\n");
  std::unique_ptr<Message> rest(m.New());
  rest->CopyFrom(m);
  for (const char* shown : {"name", "version", "etag"}) {
    rest->GetReflection()->ClearField(rest.get(), d->FindFieldByName(shown));
  }
  RenderMessage(*rest, indent + 2, out);
}

// The set fields of `m`, one per line, nested messages indented. Lists of
// resources (responses, the summary) print each item as a resource.
void RenderMessage(const Message& m, int indent, std::string* out) {
  const std::string pad(indent, ' ');
  const Reflection* r = m.GetReflection();
  const Descriptor* d = m.GetDescriptor();
  for (int k = 0; k < d->field_count(); ++k) {
    const FieldDescriptor* f = d->field(k);
    const bool is_message = f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !IsStringLike(f->message_type());
    if (f->is_repeated()) {
      const int n = r->FieldSize(m, f);
      if (!is_message) {
        if (n == 0) continue;
        std::vector<std::string> items;
        for (int i = 0; i < n; ++i) items.push_back(ValueText(m, f, i));
        absl::StrAppend(out, pad, f->name(), ": [", IndentLines(absl::StrJoin(items, ", "), pad), "]\n");
      } else if (IsResource(f->message_type())) {
        absl::StrAppend(out, pad, f->name(), ": ", n, n == 1 ? " item\n" : " items\n");
        for (int i = 0; i < n; ++i) RenderResource(r->GetRepeatedMessage(m, f, i), indent + 2, out);
      } else {
        for (int i = 0; i < n; ++i) {
          absl::StrAppend(out, pad, f->name(), "[", i, "]:\n");
          RenderMessage(r->GetRepeatedMessage(m, f, i), indent + 2, out);
        }
      }
    } else if (r->HasField(m, f)) {
      if (!is_message) {
        absl::StrAppend(out, pad, f->name(), ": ", IndentLines(ValueText(m, f, -1), pad), "\n");
      } else if (IsResource(f->message_type())) {
        RenderResource(r->GetMessage(m, f), indent, out);
      } else {
        absl::StrAppend(out, pad, f->name(), ":\n");
        RenderMessage(r->GetMessage(m, f), indent + 2, out);
      }
    }
  }
}

std::string Render(const Message& m, bool json) {
  if (json) {
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    options.add_whitespace = true;
    std::string out;
    (void)google::protobuf::util::MessageToJsonString(m, &out, options);
    if (!absl::EndsWith(out, "\n")) out.push_back('\n');
    return out;
  }
  std::string out;
  if (IsResource(m.GetDescriptor())) {
    RenderResource(m, 0, &out);
  } else {
    RenderMessage(m, 0, &out);
  }
  if (out.empty()) out = "(empty)\n";
  return out;
}

// ---------------------------------------------------------------- help

void PrintHelp(FILE* to) {
  std::fprintf(to,
               "wmtyctl: command-line client of the What Matters To You service (%s).\n\n"
               "Usage: wmtyctl [global flags] <command> [--field.path=value ...]\n\n"
               "Global flags:\n"
               "  --target=host:port    server address (default $WMTY_TARGET, else 127.0.0.1:50051)\n"
               "  --timeout=5s          deadline of the call, retries included\n"
               "  --token=JWT           bearer token (default $WMTY_TOKEN; scripts/run.sh prints one)\n"
               "  --tls_ca_file=PEM     TLS: the CA of the server's certificate (default $WMTY_TLS_CA_FILE;\n"
               "                        none: plaintext)\n"
               "  --tls_cert_file=PEM, --tls_key_file=PEM   client certificate and key (mTLS)\n"
               "  --json                print the response as JSON (proto field names)\n"
               "  --request=JSON|@file  the whole request as JSON (@- reads stdin); field flags override it\n"
               "  --help                this help; after a command, the command's fields\n\n"
               "Commands:\n",
               Service()->full_name().c_str());
  for (const Command& c : Commands()) std::fprintf(to, "  %-28s %s\n", c.name.c_str(), c.summary);
  std::fprintf(to, "\nThe change feed ('wmtyctl watch --help'):\n");
  PrintWatchCommandLine(to);
  std::fprintf(to, "\nOperator commands (backups; 'wmtyctl admin --help'):\n");
  PrintAdminCommandList(to);
  std::fprintf(to,
               "\nRun 'wmtyctl <command> --help' for its fields and an example.\n"
               "Exit status: 0 ok, 1 the call failed, 2 usage error.\n");
}

void PrintCommandHelp(const Command& c) {
  std::printf("wmtyctl %s: %s\n\nUsage: wmtyctl [global flags] %s [--field.path=value ...]\n", c.name.c_str(),
              c.summary, c.name.c_str());
  std::printf("RPC: %s(%s) returns (%s)\n\nExample:\n  %s\n\n", c.rpc->full_name().c_str(),
              c.rpc->input_type()->name().c_str(), c.rpc->output_type()->name().c_str(), c.example);
  std::printf(
      "Fields of %s (enums by name or number; repeat a flag to add to a repeated field; a bool flag\n"
      "alone means true; any message field may be given whole as JSON; write requests get a fresh\n"
      "request_id unless --request_id is given):\n",
      c.rpc->input_type()->full_name().c_str());
  std::vector<std::pair<std::string, std::string>> paths;
  ListPaths(c.rpc->input_type(), "", 0, IsCreate(c.rpc), &paths);
  size_t width = 0;
  for (const auto& [path, type] : paths) width = std::max(width, path.size());
  for (const auto& [path, type] : paths) {
    std::printf("  --%-*s  %s\n", static_cast<int>(width), path.c_str(), type.c_str());
  }
}

// ---------------------------------------------------------------- main

void PrintRpcError(const Command& c, const absl::Status& status) {
  std::fprintf(stderr, "wmtyctl %s: %s: %s\n", c.name.c_str(), absl::StatusCodeToString(status.code()).c_str(),
               std::string(status.message()).c_str());
  const google::rpc::BadRequest bad = GetFieldViolations(status);  // kept alive for the loop
  for (const auto& v : bad.field_violations()) {
    std::fprintf(stderr, "  %s: %s\n", v.field().c_str(), v.description().c_str());
  }
  if (status.code() == absl::StatusCode::kAborted) {
    std::fprintf(stderr, "  (the resource changed since it was read: get it again for the current etag)\n");
  }
}

int Main(int argc, char** argv) {
  auto inv = ParseArgs(std::vector<std::string>(argv + 1, argv + argc));
  if (!inv.ok()) {
    std::fprintf(stderr, "wmtyctl: %s\n", std::string(inv.status().message()).c_str());
    return kExitUsage;
  }
  if (inv->admin || (inv->help_command && inv->help_topic == "admin")) {
    GlobalFlags globals;
    globals.target = inv->target;
    globals.token = inv->token;
    globals.tls = inv->tls;
    if (inv->timeout_set) globals.timeout = inv->timeout;
    globals.json = inv->json;
    globals.help = inv->help || inv->help_command;
    return AdminMain(std::move(globals), inv->admin_args);
  }
  if (inv->watch || (inv->help_command && inv->help_topic == "watch")) {
    GlobalFlags globals;
    globals.target = inv->target;
    globals.token = inv->token;
    globals.tls = inv->tls;
    globals.json = inv->json;
    globals.help = inv->help || inv->help_command;
    return WatchMain(std::move(globals), inv->watch_args, [](const Message& m) { return Render(m, false); });
  }
  if (inv->help_command || (inv->command == nullptr && inv->help)) {
    if (inv->help_topic.empty()) {
      PrintHelp(stdout);
      return kExitOk;
    }
    const Command* c = FindCommand(inv->help_topic);
    if (c == nullptr) {
      std::fprintf(stderr, "wmtyctl: unknown command '%s' (run 'wmtyctl help' for the list)\n",
                   inv->help_topic.c_str());
      return kExitUsage;
    }
    PrintCommandHelp(*c);
    return kExitOk;
  }
  if (inv->command == nullptr) {
    PrintHelp(stderr);
    return kExitUsage;
  }
  if (inv->help) {
    PrintCommandHelp(*inv->command);
    return kExitOk;
  }
  auto req = BuildRequest(*inv);
  if (!req.ok()) {
    std::fprintf(stderr, "wmtyctl %s: %s\n", inv->command->name.c_str(), std::string(req.status().message()).c_str());
    return kExitUsage;
  }

  client::ClientOptions options;
  options.target = inv->target;
  options.timeout = inv->timeout;
  options.bearer_token = inv->token;
  auto credentials = ChannelCredentialsFor(inv->tls);
  if (!credentials.ok()) {
    std::fprintf(stderr, "wmtyctl: %s\n", std::string(credentials.status().message()).c_str());
    return kExitUsage;
  }
  options.credentials = *credentials;
  auto client = Client::Connect(options);
  auto resp = inv->command->run(*client, **req, inv->timeout);
  if (!resp.ok()) {
    PrintRpcError(*inv->command, resp.status());
    return kExitRpcFailed;
  }
  std::fputs(Render(**resp, inv->json).c_str(), stdout);
  return kExitOk;
}

}  // namespace
}  // namespace wmty::ctl

int main(int argc, char** argv) { return wmty::ctl::Main(argc, argv); }
