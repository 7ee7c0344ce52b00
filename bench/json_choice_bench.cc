// json_choice_bench: picks the FHIR face's JSON library by measurement.
//
//   json_choice_bench [--benchmark_min_time=0.2]   (Google Benchmark flags)
//
// Documents, both shaped like what the FHIR face reads and writes:
//   goal   - one US Core Goal as a client sends it and the server returns it
//            (meta, profile, identifier, codings, patient's words with
//            non-ASCII text, target, expressedBy, note, an extension): ~1.3 KB;
//   bundle - a searchset Bundle of 50 such Goals (fullUrl, search.mode,
//            links): ~75 KB.
// For each library:
//   Parse     - text to an in-memory document (what create/update do);
//   Serialize - an in-memory document back to compact text (what every
//               response does);
//   Build     - build the Goal (or the 50-entry Bundle) element by element,
//               as the mapping does from a stored record, and serialize it.
// simdjson (DOM API) is measured for Parse only: its documents are immutable
// and it has no builder for composing output, so it cannot be the one
// library the FHIR face needs (it would still need a second one for output).
// bytes_per_second is reported against the input (Parse) or output size.
#include <string>
#include <string_view>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <simdjson.h>

namespace {

constexpr int kBundleEntries = 50;

std::string GoalId(int i) {
  std::string id = "01JD5Z8W3K9Q2X7M4N6P8R0T";
  id += static_cast<char>('A' + (i / 26) % 26);
  id += static_cast<char>('A' + i % 26);
  return id;
}

std::string GoalJson(int i) {
  return std::string(R"({"resourceType":"Goal","id":")") + GoalId(i) +
         R"(","meta":{"versionId":"3","lastUpdated":"2026-11-24T09:41:27.183Z","profile":[)"
         R"("http://hl7.org/fhir/us/core/StructureDefinition/us-core-goal",)"
         R"("http://hl7.org/fhir/us/pacio-adi/StructureDefinition/ADI-PersonalGoal"]},)"
         R"("extension":[{"url":"http://example.org/fhir/StructureDefinition/goal-source-form",)"
         R"("valueString":"bedside-what-matters-v2"}],)"
         R"("identifier":[{"system":"urn:oid:2.16.840.1.113883.19.5.99999.1","value":"GOAL-)" +
         std::to_string(100000 + i) +
         R"("}],"lifecycleStatus":"active","achievementStatus":{"coding":[{"system":)"
         R"("http://terminology.hl7.org/CodeSystem/goal-achievement","code":"in-progress",)"
         R"("display":"In Progress"}]},"category":[{"coding":[{"system":"http://loinc.org",)"
         R"("code":"87528-6","display":"Personal health goal"}]}],"priority":{"coding":[{"system":)"
         R"("http://terminology.hl7.org/CodeSystem/goal-priority","code":"high-priority",)"
         R"("display":"High Priority"}]},"description":{"text":"Walk my granddaughter Zoë down the )"
         R"(aisle at her wedding in June — without the walker, and without being out of breath"},)"
         R"("subject":{"reference":"Patient/p-4711","display":"Beatriz Muñoz"},)"
         R"("startDate":"2026-11-01","target":[{"dueDate":"2027-06-12"}],)"
         R"("statusDate":"2026-11-24","expressedBy":{"reference":"Patient/p-4711"},)"
         R"("note":[{"authorString":"rn-17","time":"2026-11-24T09:41:00Z","text":)"
         R"("Said while her daughter was in the room; daughter agrees and will help with exercises."}]})";
}

std::string BundleJson() {
  std::string out =
      R"({"resourceType":"Bundle","id":"f2c8a1d0-6b0e-4c2e-9d57-1c3b6d9e7a10","meta":{"lastUpdated":)"
      R"("2026-11-24T09:41:27.200Z"},"type":"searchset","total":50,"link":[{"relation":"self","url":)"
      R"("http://127.0.0.1:8080/fhir/Goal?patient=p-4711&_count=50"},{"relation":"next","url":)"
      R"("http://127.0.0.1:8080/fhir/Goal?patient=p-4711&_count=50&_page_token=CgZwLTQ3MTESGjAxSkQ1WjhXM0s5UTJYN000TjZQOFIwVEJY"}],)"
      R"("entry":[)";
  for (int i = 0; i < kBundleEntries; ++i) {
    if (i > 0) out += ',';
    out += R"({"fullUrl":"http://127.0.0.1:8080/fhir/Goal/)" + GoalId(i) + R"(","resource":)" + GoalJson(i) +
           R"(,"search":{"mode":"match"}})";
  }
  out += "]}";
  return out;
}

const std::string& Doc(int which) {
  static const std::string* goal = new std::string(GoalJson(0));
  static const std::string* bundle = new std::string(BundleJson());
  return which == 0 ? *goal : *bundle;
}

void Label(benchmark::State& state, int which) {
  state.SetLabel(std::string(which == 0 ? "goal " : "bundle50 ") + std::to_string(Doc(which).size()) + " B");
}

// ---------------------------------------------------------------- RapidJSON

void BM_RapidJson_Parse(benchmark::State& state) {
  const std::string& text = Doc(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    rapidjson::Document d;
    d.Parse(text.data(), text.size());
    if (d.HasParseError()) state.SkipWithError("parse error");
    benchmark::DoNotOptimize(d);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  Label(state, static_cast<int>(state.range(0)));
}

void BM_RapidJson_Serialize(benchmark::State& state) {
  const std::string& text = Doc(static_cast<int>(state.range(0)));
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  size_t bytes = 0;
  for (auto _ : state) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    d.Accept(w);
    bytes = buf.GetSize();
    benchmark::DoNotOptimize(buf.GetString());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  Label(state, static_cast<int>(state.range(0)));
}

using RjValue = rapidjson::Value;
using RjAlloc = rapidjson::Document::AllocatorType;

RjValue RjCoding(const char* system, const char* code, const char* display, RjAlloc& a) {
  RjValue coding(rapidjson::kObjectType);
  coding.AddMember("system", RjValue(system, a), a);
  coding.AddMember("code", RjValue(code, a), a);
  coding.AddMember("display", RjValue(display, a), a);
  RjValue codings(rapidjson::kArrayType);
  codings.PushBack(coding, a);
  RjValue cc(rapidjson::kObjectType);
  cc.AddMember("coding", codings, a);
  return cc;
}

RjValue RjRef(const std::string& ref, RjAlloc& a) {
  RjValue r(rapidjson::kObjectType);
  r.AddMember("reference", RjValue(ref.c_str(), static_cast<rapidjson::SizeType>(ref.size()), a), a);
  return r;
}

RjValue RjStr(const std::string& s, RjAlloc& a) {
  return RjValue(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), a);
}

// Builds the Goal the way the mapping builds one from a stored record.
RjValue RjBuildGoal(int i, RjAlloc& a) {
  RjValue g(rapidjson::kObjectType);
  g.AddMember("resourceType", "Goal", a);
  g.AddMember("id", RjStr(GoalId(i), a), a);
  RjValue meta(rapidjson::kObjectType);
  meta.AddMember("versionId", "3", a);
  meta.AddMember("lastUpdated", "2026-11-24T09:41:27.183Z", a);
  RjValue profiles(rapidjson::kArrayType);
  profiles.PushBack("http://hl7.org/fhir/us/core/StructureDefinition/us-core-goal", a);
  profiles.PushBack("http://hl7.org/fhir/us/pacio-adi/StructureDefinition/ADI-PersonalGoal", a);
  meta.AddMember("profile", profiles, a);
  g.AddMember("meta", meta, a);
  RjValue ext(rapidjson::kObjectType);
  ext.AddMember("url", "http://example.org/fhir/StructureDefinition/goal-source-form", a);
  ext.AddMember("valueString", "bedside-what-matters-v2", a);
  RjValue exts(rapidjson::kArrayType);
  exts.PushBack(ext, a);
  g.AddMember("extension", exts, a);
  RjValue ident(rapidjson::kObjectType);
  ident.AddMember("system", "urn:oid:2.16.840.1.113883.19.5.99999.1", a);
  ident.AddMember("value", RjStr("GOAL-" + std::to_string(100000 + i), a), a);
  RjValue idents(rapidjson::kArrayType);
  idents.PushBack(ident, a);
  g.AddMember("identifier", idents, a);
  g.AddMember("lifecycleStatus", "active", a);
  g.AddMember("achievementStatus",
              RjCoding("http://terminology.hl7.org/CodeSystem/goal-achievement", "in-progress", "In Progress", a), a);
  RjValue cats(rapidjson::kArrayType);
  cats.PushBack(RjCoding("http://loinc.org", "87528-6", "Personal health goal", a), a);
  g.AddMember("category", cats, a);
  g.AddMember("priority",
              RjCoding("http://terminology.hl7.org/CodeSystem/goal-priority", "high-priority", "High Priority", a), a);
  RjValue desc(rapidjson::kObjectType);
  desc.AddMember("text",
                 RjStr("Walk my granddaughter Zoë down the aisle at her wedding in June — without the walker, "
                       "and without being out of breath",
                       a),
                 a);
  g.AddMember("description", desc, a);
  RjValue subject = RjRef("Patient/p-4711", a);
  subject.AddMember("display", RjStr("Beatriz Muñoz", a), a);
  g.AddMember("subject", subject, a);
  g.AddMember("startDate", "2026-11-01", a);
  RjValue target(rapidjson::kObjectType);
  target.AddMember("dueDate", "2027-06-12", a);
  RjValue targets(rapidjson::kArrayType);
  targets.PushBack(target, a);
  g.AddMember("target", targets, a);
  g.AddMember("statusDate", "2026-11-24", a);
  g.AddMember("expressedBy", RjRef("Patient/p-4711", a), a);
  RjValue note(rapidjson::kObjectType);
  note.AddMember("authorString", "rn-17", a);
  note.AddMember("time", "2026-11-24T09:41:00Z", a);
  note.AddMember("text",
                 RjStr("Said while her daughter was in the room; daughter agrees and will help with exercises.", a), a);
  RjValue notes(rapidjson::kArrayType);
  notes.PushBack(note, a);
  g.AddMember("note", notes, a);
  return g;
}

void BM_RapidJson_Build(benchmark::State& state) {
  const int which = static_cast<int>(state.range(0));
  size_t bytes = 0;
  for (auto _ : state) {
    rapidjson::Document d;
    auto& a = d.GetAllocator();
    if (which == 0) {
      RjValue g = RjBuildGoal(0, a);
      static_cast<RjValue&>(d) = g;  // moves
    } else {
      d.SetObject();
      d.AddMember("resourceType", "Bundle", a);
      d.AddMember("type", "searchset", a);
      d.AddMember("total", kBundleEntries, a);
      RjValue entries(rapidjson::kArrayType);
      for (int i = 0; i < kBundleEntries; ++i) {
        RjValue e(rapidjson::kObjectType);
        e.AddMember("fullUrl", RjStr("http://127.0.0.1:8080/fhir/Goal/" + GoalId(i), a), a);
        e.AddMember("resource", RjBuildGoal(i, a), a);
        RjValue search(rapidjson::kObjectType);
        search.AddMember("mode", "match", a);
        e.AddMember("search", search, a);
        entries.PushBack(e, a);
      }
      d.AddMember("entry", entries, a);
    }
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    d.Accept(w);
    bytes = buf.GetSize();
    benchmark::DoNotOptimize(buf.GetString());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  Label(state, which);
}

// ---------------------------------------------------------------- nlohmann

void BM_Nlohmann_Parse(benchmark::State& state) {
  const std::string& text = Doc(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) state.SkipWithError("parse error");
    benchmark::DoNotOptimize(j);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  Label(state, static_cast<int>(state.range(0)));
}

void BM_Nlohmann_Serialize(benchmark::State& state) {
  const std::string& text = Doc(static_cast<int>(state.range(0)));
  const nlohmann::json j = nlohmann::json::parse(text);
  size_t bytes = 0;
  for (auto _ : state) {
    std::string out = j.dump();
    bytes = out.size();
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  Label(state, static_cast<int>(state.range(0)));
}

nlohmann::json NlCoding(const char* system, const char* code, const char* display) {
  return {{"coding", nlohmann::json::array({{{"system", system}, {"code", code}, {"display", display}}})}};
}

nlohmann::json NlBuildGoal(int i) {
  nlohmann::json g;
  g["resourceType"] = "Goal";
  g["id"] = GoalId(i);
  g["meta"] = {{"versionId", "3"},
               {"lastUpdated", "2026-11-24T09:41:27.183Z"},
               {"profile",
                {"http://hl7.org/fhir/us/core/StructureDefinition/us-core-goal",
                 "http://hl7.org/fhir/us/pacio-adi/StructureDefinition/ADI-PersonalGoal"}}};
  g["extension"] = nlohmann::json::array({{{"url", "http://example.org/fhir/StructureDefinition/goal-source-form"},
                                           {"valueString", "bedside-what-matters-v2"}}});
  g["identifier"] = nlohmann::json::array(
      {{{"system", "urn:oid:2.16.840.1.113883.19.5.99999.1"}, {"value", "GOAL-" + std::to_string(100000 + i)}}});
  g["lifecycleStatus"] = "active";
  g["achievementStatus"] =
      NlCoding("http://terminology.hl7.org/CodeSystem/goal-achievement", "in-progress", "In Progress");
  g["category"] = nlohmann::json::array({NlCoding("http://loinc.org", "87528-6", "Personal health goal")});
  g["priority"] = NlCoding("http://terminology.hl7.org/CodeSystem/goal-priority", "high-priority", "High Priority");
  g["description"] = {{"text",
                       "Walk my granddaughter Zoë down the aisle at her wedding in June — without the walker, "
                       "and without being out of breath"}};
  g["subject"] = {{"reference", "Patient/p-4711"}, {"display", "Beatriz Muñoz"}};
  g["startDate"] = "2026-11-01";
  g["target"] = nlohmann::json::array({{{"dueDate", "2027-06-12"}}});
  g["statusDate"] = "2026-11-24";
  g["expressedBy"] = {{"reference", "Patient/p-4711"}};
  g["note"] = nlohmann::json::array(
      {{{"authorString", "rn-17"},
        {"time", "2026-11-24T09:41:00Z"},
        {"text", "Said while her daughter was in the room; daughter agrees and will help with exercises."}}});
  return g;
}

void BM_Nlohmann_Build(benchmark::State& state) {
  const int which = static_cast<int>(state.range(0));
  size_t bytes = 0;
  for (auto _ : state) {
    nlohmann::json d;
    if (which == 0) {
      d = NlBuildGoal(0);
    } else {
      d["resourceType"] = "Bundle";
      d["type"] = "searchset";
      d["total"] = kBundleEntries;
      auto& entries = d["entry"] = nlohmann::json::array();
      for (int i = 0; i < kBundleEntries; ++i) {
        entries.push_back({{"fullUrl", "http://127.0.0.1:8080/fhir/Goal/" + GoalId(i)},
                           {"resource", NlBuildGoal(i)},
                           {"search", {{"mode", "match"}}}});
      }
    }
    std::string out = d.dump();
    bytes = out.size();
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  Label(state, which);
}

// ---------------------------------------------------------------- simdjson

void BM_Simdjson_Parse(benchmark::State& state) {
  const std::string& text = Doc(static_cast<int>(state.range(0)));
  const simdjson::padded_string padded(text);
  simdjson::dom::parser parser;  // reused, as a server thread would
  for (auto _ : state) {
    simdjson::dom::element doc;
    if (parser.parse(padded).get(doc)) state.SkipWithError("parse error");
    benchmark::DoNotOptimize(doc);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  Label(state, static_cast<int>(state.range(0)));
}

// Parse and read every field the mapping reads from a Goal (on-demand API:
// what simdjson is fastest at), so it is compared doing real work.
void BM_Simdjson_OnDemandReadGoal(benchmark::State& state) {
  const std::string& text = Doc(0);
  const simdjson::padded_string padded(text);
  simdjson::ondemand::parser parser;
  for (auto _ : state) {
    auto doc = parser.iterate(padded);
    size_t n = 0;
    for (auto field : doc.get_object()) {
      std::string_view key = field.unescaped_key();
      if (key == "lifecycleStatus" || key == "startDate" || key == "id") {
        std::string_view v = field.value().get_string();
        n += v.size();
      } else if (key == "description") {
        std::string_view v = field.value()["text"].get_string();
        n += v.size();
      } else if (key == "subject") {
        std::string_view v = field.value()["reference"].get_string();
        n += v.size();
      }
    }
    benchmark::DoNotOptimize(n);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  Label(state, 0);
}

}  // namespace

BENCHMARK(BM_RapidJson_Parse)->Arg(0)->Arg(1);
BENCHMARK(BM_Nlohmann_Parse)->Arg(0)->Arg(1);
BENCHMARK(BM_Simdjson_Parse)->Arg(0)->Arg(1);
BENCHMARK(BM_Simdjson_OnDemandReadGoal);
BENCHMARK(BM_RapidJson_Serialize)->Arg(0)->Arg(1);
BENCHMARK(BM_Nlohmann_Serialize)->Arg(0)->Arg(1);
BENCHMARK(BM_RapidJson_Build)->Arg(0)->Arg(1);
BENCHMARK(BM_Nlohmann_Build)->Arg(0)->Arg(1);

BENCHMARK_MAIN();
