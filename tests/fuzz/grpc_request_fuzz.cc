// Fuzz target: a wmty.v1.WhatMattersService request, from its bytes to the
// domain core, as the gRPC face handles it.
//
// Input: one byte choosing the RPC (index into kMethods, modulo its size),
// then the serialized request. The bytes are parsed as that RPC's request
// message the way services/grpc does (ParseFromArray; on failure
// FindInvalidUtf8Field names the field), and a request that parses goes to
// PatientRecords (validation, names, etags, field masks, idempotency, page
// tokens) against a real Store: RocksDB in a temp dir, opened once per
// process with fixtures (one resource of each kind for patient "p1"). A list
// that returns a next_page_token is asked for that page too. Every status is
// mapped to its gRPC form (ToGrpcStatus) as the face would answer.
//
// The store syncs nothing (sync_writes = false): this target looks for
// crashes, leaks and undefined behaviour, not durability, and an fsync per
// input would make it a hundred times slower. The database grows with the
// run (every accepted create stays); the directory is removed at exit.
//
// Resource names "patients/p1/<collection>/0" (and links such as
// goal.what_matters) are replaced by the fixture of that collection, so seeds
// and mutations reach existing resources (Get, Update, Retract, versions).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/reflection.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/text_format.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "common/log.h"
#include "common/status.h"
#include "common/text.h"
#include "domain/names.h"
#include "domain/patient_records.h"
#include "fuzz/fuzz_check.h"
#include "storage/store.h"
#include "wmty/v1/service.pb.h"

namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using wmty::domain::CallContext;
using wmty::domain::Done;
using wmty::domain::PatientRecords;
namespace v1 = wmty::v1;

struct World {
  std::string dir;
  std::unique_ptr<wmty::storage::Store> store;
  std::unique_ptr<PatientRecords> records;
  // collection ("goals", ...) -> id of the fixture of patient p1.
  std::map<std::string, std::string> fixture_ids;
};
World* world = nullptr;

void CloseWorld() {
  if (world == nullptr) return;
  world->records.reset();
  world->store->Close();
  world->store.reset();
  std::error_code ignored;
  std::filesystem::remove_all(world->dir, ignored);
}

template <class Resp>
absl::StatusOr<Resp> Await(absl::AnyInvocable<void(Done<Resp>)> start) {
  absl::Notification finished;
  absl::StatusOr<Resp> result;
  start([&](absl::StatusOr<Resp> r) {
    result = std::move(r);
    finished.Notify();
  });
  finished.WaitForNotification();
  return result;
}

template <class M>
M Text(const char* text) {
  M m;
  if (!google::protobuf::TextFormat::ParseFromString(text, &m)) std::abort();
  return m;
}

// Fixtures of patient p1: one of each kind, valid as the API requires.
void CreateFixtures(World& w) {
  auto must = [](const auto& result) {
    if (!result.ok()) {
      std::fprintf(stderr, "fixture refused: %s\n", std::string(result.status().message()).c_str());
      std::abort();
    }
    return *result;
  };
  constexpr char kProvenance[] = R"pb(provenance {
                                        recorded_by { practitioner_id: "nurse-17" display_name: "Ana Ruiz" role: "RN" }
                                        said_by { kind: PATIENT }
                                        encounter_id: "enc-1"
                                        channel: BEDSIDE
                                      })pb";
  // The request snippets below are joined with explicit spaces: clang-format
  // formats each R"pb(...)pb" literal as a text proto and trims its edges, so a
  // separator inside a literal would not survive formatting.
  auto wm = must(Await<v1::WhatMatters>([&](Done<v1::WhatMatters> done) {
    w.records->CreateWhatMatters(
        Text<v1::CreateWhatMattersRequest>(absl::StrCat(R"pb(parent: "patients/p1"
                                                             what_matters { statement: "Walking my dog every morning"
                                                                            prompt: "What matters to you?"
                                                                            life_domains: HOBBIES_AND_JOY)pb",
                                                        " ", kProvenance, "}")
                                               .c_str()),
        {}, std::move(done));
  }));
  const std::string wm_name = wm.name();
  auto goal = must(Await<v1::Goal>([&](Done<v1::Goal> done) {
    w.records->CreateGoal(Text<v1::CreateGoalRequest>(absl::StrCat(R"pb(parent: "patients/p1"
                                                                        goal { description: "Walk to the park"
                                                                               lifecycle_status: GOAL_ACTIVE
                                                                               achievement_status: IN_PROGRESS
                                                                               categories: PHYSIOTHERAPY
                                                                               target_date: "2027-06"
                                                                               what_matters: ")pb",
                                                                   wm_name, "\"", " ", kProvenance, "}")
                                                          .c_str()),
                          {}, std::move(done));
  }));
  auto pref = must(Await<v1::Preference>([&](Done<v1::Preference> done) {
    w.records->CreatePreference(Text<v1::CreatePreferenceRequest>(
                                    absl::StrCat(R"pb(parent: "patients/p1"
                                                      preference { kind: LANGUAGE value_text: "Spanish"
                                                                   language { language: "es" interpreter_needed: true }
                                                 )pb",
                                                 " ", kProvenance, "}")
                                        .c_str()),
                                {}, std::move(done));
  }));
  auto score = must(Await<v1::GoalScore>([&](Done<v1::GoalScore> done) {
    w.records->CreateGoalScore(
        Text<v1::CreateGoalScoreRequest>(absl::StrCat(R"pb(parent: "patients/p1"
                                                           goal_score { score_type: INITIAL score: -1 goal: ")pb",
                                                      goal.name(), "\"", " ", kProvenance, "}")
                                             .c_str()),
        {}, std::move(done));
  }));
  must(Await<v1::Priorities>([&](Done<v1::Priorities> done) {
    w.records->UpdatePriorities(Text<v1::UpdatePrioritiesRequest>(
                                    absl::StrCat(R"pb(priorities { name: "patients/p1/priorities" items: ")pb",
                                                 goal.name(), "\" items: \"", wm_name, "\"", " ", kProvenance, "}")
                                        .c_str()),
                                {}, std::move(done));
  }));
  for (const std::string& name : {wm.name(), goal.name(), pref.name(), score.name()}) {
    auto parsed = wmty::domain::ParseName(name, "name");
    if (!parsed.ok()) std::abort();
    w.fixture_ids[std::string(wmty::domain::CollectionOf(parsed->kind))] = parsed->id;
  }
}

void Init() {
  // Protobuf logs every parse of invalid UTF-8; the fuzzer makes many.
  google::protobuf::SetLogHandler(nullptr);
  wmty::log::SetMinLevel(wmty::log::Level::kError);
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/wmty-grpc-fuzz-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) std::abort();
  world = new World;
  world->dir = pattern;
  wmty::storage::StoreOptions options;
  options.path = world->dir + "/db";
  options.sync_writes = false;
  options.block_cache_bytes = size_t{8} << 20;
  auto store = wmty::storage::Store::Open(options);
  if (!store.ok()) std::abort();
  world->store = std::move(*store);
  auto records = PatientRecords::Create(world->store.get());
  if (!records.ok()) std::abort();
  world->records = std::move(*records);
  CreateFixtures(*world);
  std::atexit(CloseWorld);
}

// "patients/p1/goals/0" -> the fixture goal's name; everywhere in `m`.
void ResolveFixtures(Message* m) {
  const auto* reflection = m->GetReflection();
  auto resolve = [](std::string s) {
    if (!absl::StartsWith(s, "patients/p1/") || !absl::EndsWith(s, "/0")) return s;
    const std::string collection = s.substr(12, s.size() - 14);
    auto it = world->fixture_ids.find(collection);
    if (it == world->fixture_ids.end()) return s;
    return absl::StrCat("patients/p1/", collection, "/", it->second);
  };
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(*m, &fields);
  for (const FieldDescriptor* f : fields) {
    if (f->type() == FieldDescriptor::TYPE_STRING) {
      if (f->is_repeated()) {
        for (int i = 0; i < reflection->FieldSize(*m, f); ++i) {
          reflection->SetRepeatedString(m, f, i, resolve(reflection->GetRepeatedString(*m, f, i)));
        }
      } else {
        reflection->SetString(m, f, resolve(reflection->GetString(*m, f)));
      }
    } else if (f->type() == FieldDescriptor::TYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int i = 0; i < reflection->FieldSize(*m, f); ++i)
          ResolveFixtures(reflection->MutableRepeatedMessage(m, f, i));
      } else {
        ResolveFixtures(reflection->MutableMessage(m, f));
      }
    }
  }
}

// ParseRequest of services/grpc/grpc_service.cc.
template <class Req>
bool ParseRequest(absl::string_view bytes, Req* req) {
  if (req->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    ResolveFixtures(req);
    return true;
  }
  auto field = wmty::FindInvalidUtf8Field(*Req::descriptor(), bytes);
  if (field.has_value()) (void)wmty::ToGrpcStatus(wmty::InvalidField(*field, "not valid UTF-8"));
  return false;
}

template <class Resp>
void Answer(const absl::StatusOr<Resp>& result) {
  if (!result.ok()) {
    (void)wmty::ToGrpcStatus(result.status());
    return;
  }
  std::string bytes;
  WMTY_FUZZ_CHECK(result->SerializeToString(&bytes), "a response does not serialize");
}

template <class Req, class Resp>
void Read(absl::string_view bytes, absl::StatusOr<Resp> (PatientRecords::*method)(const Req&, const CallContext&)) {
  Req req;
  if (!ParseRequest(bytes, &req)) return;
  absl::StatusOr<Resp> result = (world->records.get()->*method)(req, CallContext{});
  Answer(result);
  if constexpr (requires {
                  result->next_page_token();
                  req.set_page_token("");
                }) {
    if (result.ok() && !result->next_page_token().empty()) {
      req.set_page_token(result->next_page_token());
      absl::StatusOr<Resp> next = (world->records.get()->*method)(req, CallContext{});
      WMTY_FUZZ_CHECK(next.ok(), "a next_page_token we issued was refused for the same request");
      Answer(next);
    }
  }
}

template <class Req, class Resp>
void Write(absl::string_view bytes,
           void (PatientRecords::*method)(const Req&, const CallContext&, wmty::domain::WriteDone<Resp>)) {
  Req req;
  if (!ParseRequest(bytes, &req)) return;
  Answer(Await<Resp>([&](Done<Resp> done) { (world->records.get()->*method)(req, CallContext{}, std::move(done)); }));
}

// One entry per RPC of wmty.v1.WhatMattersService, in service.proto order.
const std::vector<std::function<void(absl::string_view)>>& Methods() {
  using P = PatientRecords;
  static const auto* methods = new std::vector<std::function<void(absl::string_view)>>{
      [](absl::string_view b) { Write(b, &P::CreateWhatMatters); },       // 0
      [](absl::string_view b) { Read(b, &P::GetWhatMatters); },           // 1
      [](absl::string_view b) { Read(b, &P::ListWhatMatters); },          // 2
      [](absl::string_view b) { Write(b, &P::UpdateWhatMatters); },       // 3
      [](absl::string_view b) { Write(b, &P::RetractWhatMatters); },      // 4
      [](absl::string_view b) { Read(b, &P::ListWhatMattersVersions); },  // 5
      [](absl::string_view b) { Write(b, &P::CreateGoal); },              // 6
      [](absl::string_view b) { Read(b, &P::GetGoal); },                  // 7
      [](absl::string_view b) { Read(b, &P::ListGoals); },                // 8
      [](absl::string_view b) { Write(b, &P::UpdateGoal); },              // 9
      [](absl::string_view b) { Write(b, &P::RetractGoal); },             // 10
      [](absl::string_view b) { Read(b, &P::ListGoalVersions); },         // 11
      [](absl::string_view b) { Write(b, &P::CreatePreference); },        // 12
      [](absl::string_view b) { Read(b, &P::GetPreference); },            // 13
      [](absl::string_view b) { Read(b, &P::ListPreferences); },          // 14
      [](absl::string_view b) { Write(b, &P::UpdatePreference); },        // 15
      [](absl::string_view b) { Write(b, &P::RetractPreference); },       // 16
      [](absl::string_view b) { Read(b, &P::ListPreferenceVersions); },   // 17
      [](absl::string_view b) { Write(b, &P::CreateGoalScore); },         // 18
      [](absl::string_view b) { Read(b, &P::GetGoalScore); },             // 19
      [](absl::string_view b) { Read(b, &P::ListGoalScores); },           // 20
      [](absl::string_view b) { Write(b, &P::UpdateGoalScore); },         // 21
      [](absl::string_view b) { Write(b, &P::RetractGoalScore); },        // 22
      [](absl::string_view b) { Read(b, &P::ListGoalScoreVersions); },    // 23
      [](absl::string_view b) { Read(b, &P::GetPriorities); },            // 24
      [](absl::string_view b) { Write(b, &P::UpdatePriorities); },        // 25
      [](absl::string_view b) { Read(b, &P::ListPrioritiesVersions); },   // 26
      [](absl::string_view b) { Read(b, &P::GetPatientSummary); },        // 27
  };
  return *methods;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  Init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto& methods = Methods();
  methods[data[0] % methods.size()](absl::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  return 0;
}
