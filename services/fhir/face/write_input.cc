// What a FHIR write takes from its request before the domain sees it: the
// body (media type, JSON, shape, resourceType), If-Match, the URL id,
// X-Request-Id, the recorder (X-Provenance), and a List's priority items.

#include <rapidjson/error/en.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/text.h"
#include "domain/names.h"
#include "fhir/face/service.h"
#include "fhir/mapping_json.h"

namespace wmty::fhir::face {
namespace {

// Deeper request bodies are refused before the mapping sees them (FHIR
// resources are nowhere near this deep; it bounds any recursion downstream).
constexpr int kMaxJsonDepth = 64;

}  // namespace

// The version an If-Match header names into `version` (nullopt when there
// is none, or "*": any version). False, answered 400, when it is not an ETag
// of this server.
bool IfMatchOf(Call& c, std::optional<int64_t>* version) {
  version->reset();
  if (c.request.find(bhttp::field::if_match) == c.request.end()) return true;
  const absl::string_view header = absl::StripAsciiWhitespace(c.Header(bhttp::field::if_match));
  if (header == "*") return true;
  *version = ParseEtagVersion(header);
  if (version->has_value()) return true;
  ReplyError(c, Bad("value", "If-Match must be an ETag of this server, e.g. W/\"3\""));
  return false;
}

// PUT's body names the id of its URL. False, answered 400, otherwise.
bool BodyIdIsUrlId(Call& c, const Document& doc, absl::string_view type, absl::string_view id) {
  auto body_id = doc.FindMember("id");
  if (body_id != doc.MemberEnd() && body_id->value.IsString() && json::StringOf(body_id->value) == id) return true;
  ReplyError(c, Bad(body_id == doc.MemberEnd() ? "required" : "invalid",
                    absl::StrCat("the resource id must equal the id in the URL (", id.substr(0, 64), ")"),
                    absl::StrCat(type, ".id")));
  return false;
}

void SetAgents(const WriteAgents& agents, v1::Provenance* p) {
  *p->mutable_recorded_by() = agents.recorded_by;
  if (agents.on_behalf_of.has_value()) *p->mutable_on_behalf_of() = *agents.on_behalf_of;
}

void SetRecorder(AnyResource* resource, const WriteAgents& agents) {
  std::visit([&](auto& r) { SetAgents(agents, r.mutable_provenance()); }, *resource);
}

bool FhirService::ParseBody(Call& c, absl::string_view type, Document* doc) {
  const absl::string_view content_type = c.Header(bhttp::field::content_type);
  if (!IsJsonMediaType(content_type)) {
    ReplyError(c, MakeRestError(http::Status::unsupported_media_type, "not-supported",
                                "the body must be application/fhir+json (or application/json), UTF-8"));
    return false;
  }
  const std::string& body = c.request.body();
  if (absl::StripAsciiWhitespace(body).empty()) {
    ReplyError(c, Bad("structure", absl::StrCat("the request body is empty: send a ", type, " resource")));
    return false;
  }
  doc->Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(body.data(), body.size());
  if (doc->HasParseError()) {
    // A body that is not JSON may be one whose Content-Length lies: what
    // follows it on the connection cannot be trusted to be the next request
    // (smuggling), so the connection is closed after this answer.
    ReplyError(
        c,
        Bad("structure", absl::StrCat("the body is not valid JSON: ", rapidjson::GetParseError_En(doc->GetParseError()),
                                      " (at byte ", doc->GetErrorOffset(), ")")),
        {{bhttp::field::connection, "close"}});
    return false;
  }
  if (auto s = CheckJsonShape(*doc, kMaxJsonDepth); !s.ok()) {
    ReplyError(c, Bad("structure", std::string(s.message())));
    return false;
  }
  if (!doc->IsObject()) {
    ReplyError(c, Bad("structure", "the body must be a JSON object (a FHIR resource)"));
    return false;
  }
  auto rt = doc->FindMember("resourceType");
  if (rt == doc->MemberEnd() || !rt->value.IsString()) {
    ReplyError(c, Bad("structure", "the body has no resourceType", "resourceType"));
    return false;
  }
  if (json::StringOf(rt->value) != type) {
    ReplyError(c, Bad("invalid",
                      absl::StrCat("resourceType ", json::StringOf(rt->value).substr(0, 64),
                                   " does not match the URL (", type, ")"),
                      "resourceType"));
    return false;
  }
  return true;
}

bool FhirService::RequestIdOf(Call& c, std::string* out) {
  const absl::string_view id = c.Header("X-Request-Id");
  if (!c.HasHeader("X-Request-Id")) return true;
  if (id.empty() || id.size() > 128 || !IsValidUtf8(id) || HasControlCharacters(id)) {
    ReplyError(c, Bad("value", "X-Request-Id must be 1 to 128 bytes of printable text (a UUID is recommended)"));
    return false;
  }
  *out = std::string(id);
  return true;
}

bool FhirService::RecorderOf(Call& c, WriteAgents* out, std::string* reason) {
  std::optional<XProvenance> stated;
  if (c.HasHeader("X-Provenance")) {
    auto parsed = ParseXProvenance(c.Header("X-Provenance"));
    if (!parsed.ok()) {
      ReplyError(c, Bad("invalid", std::string(parsed.status().message())));
      return false;
    }
    if (!parsed->reason.empty() && reason == nullptr) {
      // Never drop what a user typed: only a deletion keeps a reason.
      ReplyError(c, Bad("invalid", "X-Provenance reason[0].text is kept only on DELETE (why it is retracted)",
                        "Provenance.reason[0].text"));
      return false;
    }
    stated = std::move(*parsed);
  }
  if (reason != nullptr && stated.has_value()) *reason = stated->reason;
  std::optional<v1::Recorder> author = stated.has_value() ? std::move(stated->author) : std::nullopt;
  if (c.principal.has_value()) {
    out->on_behalf_of = std::move(author);
  } else if (author.has_value()) {
    out->recorded_by = std::move(*author);
  } else {
    out->recorded_by.set_practitioner_id(std::string(kUnattributedPractitioner));
  }
  return true;
}

// List entries name Goal/<id> or Observation/<id> (Incoming::list_item_refs);
// an Observation is either a what-matters answer or a preference, which only
// the store knows. Fills priorities->items with the domain names, in order.
bool FhirService::ResolvePriorityItems(Call& c, const std::string& patient, const std::vector<std::string>& refs,
                                       v1::Priorities* priorities) {
  priorities->clear_items();
  for (size_t i = 0; i < refs.size(); ++i) {
    const std::string where = absl::StrCat("List.entry[", i, "].item");
    auto ref = ParseReference(refs[i]);
    if (!ref.has_value() || (ref->type != "Goal" && ref->type != "Observation")) {
      ReplyError(c, Bad("value", "a priority must reference Goal/<id> or Observation/<id>", where));
      return false;
    }
    std::optional<Record> found;
    for (Kind kind : ref->type == "Goal" ? std::vector<Kind>{storage::GOAL}
                                         : std::vector<Kind>{storage::WHAT_MATTERS, storage::PREFERENCE}) {
      auto r = core_->FindCurrentById(kind, ref->id);
      if (!r.ok()) {
        ReplyError(c, FromStatus(r.status(), storage::PRIORITIES));
        return false;
      }
      if (r->has_value()) {
        found = std::move(**r);
        break;
      }
    }
    if (!found.has_value() || found->patient_id() != patient || found->retracted()) {
      ReplyError(c, Bad("value",
                        absl::StrCat(ref->type, "/", ref->id.substr(0, 64),
                                     " is not a current goal, what-matters answer or preference of this patient"),
                        where));
      return false;
    }
    priorities->add_items(domain::FormatName(found->kind(), patient, found->id()));
  }
  return true;
}

}  // namespace wmty::fhir::face
