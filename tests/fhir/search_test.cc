// Search-parameter parsing and matching (services/fhir/search.h): pure
// functions, no server.
#include "fhir/search.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "support/test_support.h"

namespace wmty::fhir {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::wmty::testing::StatusIs;

std::vector<QueryParam> Q(absl::string_view query) {
  auto q = ParseQueryString(query);
  EXPECT_TRUE(q.ok()) << q.status();
  return q.ok() ? *q : std::vector<QueryParam>();
}

absl::StatusOr<SearchSpec> Parse(absl::string_view type, absl::string_view query, bool strict = false) {
  return ParseSearch(type, Q(query), strict);
}

int64_t Micros(int y, int m, int d, int hh = 0, int mm = 0, int ss = 0) {
  return absl::ToUnixMicros(absl::FromCivil(absl::CivilSecond(y, m, d, hh, mm, ss), absl::UTCTimeZone()));
}

rapidjson::Document Json(absl::string_view s) {
  rapidjson::Document d;
  d.Parse(s.data(), s.size());
  EXPECT_FALSE(d.HasParseError()) << s;
  return d;
}

// ---------------------------------------------------------------- query strings

TEST(QueryStringTest, DecodesPairsPlusAndPercent) {
  EXPECT_THAT(Q("a=1&b=x+y&c=%7C%2C&&d"),
              ElementsAre(QueryParam{"a", "1"}, QueryParam{"b", "x y"}, QueryParam{"c", "|,"}, QueryParam{"d", ""}));
  EXPECT_THAT(Q("subject%3APatient=p1"), ElementsAre(QueryParam{"subject:Patient", "p1"}));
  EXPECT_THAT(Q(""), IsEmpty());
}

TEST(QueryStringTest, RefusesBadEscapesAndInvalidUtf8) {
  EXPECT_THAT(ParseQueryString("a=%4"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseQueryString("a=%zz"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseQueryString("a=%"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseQueryString("a=%FF%FE"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(QueryStringTest, FormatRoundTrips) {
  const std::vector<QueryParam> params = {
      {"code", "http://loinc.org|95541-9"}, {"date", "ge2024-01-01T00:00:00+02:00"}, {"x y", "ä&="}};
  EXPECT_EQ(Q(FormatQuery(params)), params);
  EXPECT_EQ(FormatQuery({{"patient", "Patient/p1"}}), "patient=Patient/p1");
}

// ---------------------------------------------------------------- values

TEST(DateRangeTest, PrecisionGivesTheRange) {
  auto year = ParseFhirDateRange("2024");
  ASSERT_TRUE(year.has_value());
  EXPECT_EQ(year->lo, Micros(2024, 1, 1));
  EXPECT_EQ(year->hi, Micros(2025, 1, 1));
  auto month = ParseFhirDateRange("2024-02");
  ASSERT_TRUE(month.has_value());
  EXPECT_EQ(month->lo, Micros(2024, 2, 1));
  EXPECT_EQ(month->hi, Micros(2024, 3, 1));
  auto day = ParseFhirDateRange("2024-02-29");
  ASSERT_TRUE(day.has_value());
  EXPECT_EQ(day->hi - day->lo, int64_t{86400} * 1000000);
  auto minute = ParseFhirDateRange("2024-02-29T10:30Z");
  ASSERT_TRUE(minute.has_value());
  EXPECT_EQ(minute->lo, Micros(2024, 2, 29, 10, 30));
  EXPECT_EQ(minute->hi - minute->lo, int64_t{60} * 1000000);
  auto second = ParseFhirDateRange("2024-02-29T10:30:15+02:00");
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->lo, Micros(2024, 2, 29, 8, 30, 15));
  EXPECT_EQ(second->hi - second->lo, 1000000);
  auto millis = ParseFhirDateRange("2024-02-29T10:30:15.250Z");
  ASSERT_TRUE(millis.has_value());
  EXPECT_EQ(millis->lo, Micros(2024, 2, 29, 10, 30, 15) + 250000);
  EXPECT_EQ(millis->hi - millis->lo, 1000);
  auto no_zone = ParseFhirDateRange("2024-02-29T10:30:15");  // read as UTC
  ASSERT_TRUE(no_zone.has_value());
  EXPECT_EQ(no_zone->lo, Micros(2024, 2, 29, 10, 30, 15));
}

TEST(DateRangeTest, RefusesWhatIsNotADate) {
  for (absl::string_view bad :
       {"", "24", "2024-13", "2023-02-29", "2024-1-01", "2024/01/01", "2024-01-01T25:00Z", "2024-01-01T10",
        "2024-01-01T10:00:00.Z", "2024-01-01T10:00:00+2", "2024-01-01x", "0000", "today"}) {
    EXPECT_FALSE(ParseFhirDateRange(bad).has_value()) << bad;
  }
}

TEST(DateMatchTest, PrefixesFollowSearchHtml) {
  const DateRange june15 = *ParseFhirDateRange("2027-06-15");
  auto value = [](DatePrefix p, absl::string_view s) { return DateValue{p, *ParseFhirDateRange(s)}; };
  EXPECT_TRUE(DateMatches(value(DatePrefix::kEq, "2027-06-15"), june15));
  EXPECT_TRUE(DateMatches(value(DatePrefix::kEq, "2027-06"), june15));
  EXPECT_TRUE(DateMatches(value(DatePrefix::kEq, "2027"), june15));
  EXPECT_FALSE(DateMatches(value(DatePrefix::kEq, "2027-06-16"), june15));
  EXPECT_TRUE(DateMatches(value(DatePrefix::kNe, "2027-06-16"), june15));
  EXPECT_FALSE(DateMatches(value(DatePrefix::kNe, "2027-06"), june15));
  EXPECT_TRUE(DateMatches(value(DatePrefix::kGt, "2027-06-14"), june15));
  EXPECT_FALSE(DateMatches(value(DatePrefix::kGt, "2027-06-15"), june15));
  EXPECT_TRUE(DateMatches(value(DatePrefix::kGe, "2027-06-15"), june15));
  EXPECT_FALSE(DateMatches(value(DatePrefix::kGe, "2027-06-16"), june15));
  EXPECT_TRUE(DateMatches(value(DatePrefix::kLt, "2027-06-16"), june15));
  EXPECT_FALSE(DateMatches(value(DatePrefix::kLt, "2027-06-15"), june15));
  EXPECT_TRUE(DateMatches(value(DatePrefix::kLe, "2027-06-15"), june15));
  EXPECT_FALSE(DateMatches(value(DatePrefix::kLe, "2027-06-14"), june15));
  EXPECT_TRUE(DateMatches(value(DatePrefix::kSa, "2027-06-14"), june15));
  EXPECT_FALSE(DateMatches(value(DatePrefix::kSa, "2027-06"), june15));
  EXPECT_TRUE(DateMatches(value(DatePrefix::kEb, "2027-06-16"), june15));
  EXPECT_FALSE(DateMatches(value(DatePrefix::kEb, "2027-06-15"), june15));
}

TEST(ReferenceTest, ParsesEveryForm) {
  auto r = ParseReference("Goal/01ABC");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->type, "Goal");
  EXPECT_EQ(r->id, "01ABC");
  EXPECT_EQ(r->version, "");
  r = ParseReference("http://example.org/fhir/Patient/p1/_history/3");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->type, "Patient");
  EXPECT_EQ(r->id, "p1");
  EXPECT_EQ(r->version, "3");
  r = ParseReference("p1");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->type, "");
  EXPECT_EQ(r->id, "p1");
  EXPECT_FALSE(ParseReference("").has_value());
  EXPECT_FALSE(ParseReference("lower/1").has_value());
}

// ---------------------------------------------------------------- ParseSearch

TEST(ParseSearchTest, TokensInEveryForm) {
  auto spec = Parse("Goal", "category=http://loinc.org|87528-6,|plain,sys|,bare&lifecycle-status=active");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->criteria.size(), 2u);
  const auto& t = spec->criteria[0].tokens;
  ASSERT_EQ(t.size(), 4u);
  EXPECT_TRUE(t[0].has_system);
  EXPECT_EQ(t[0].system, "http://loinc.org");
  EXPECT_EQ(t[0].code, "87528-6");
  EXPECT_TRUE(t[1].has_system);
  EXPECT_EQ(t[1].system, "");
  EXPECT_EQ(t[1].code, "plain");
  EXPECT_TRUE(t[2].has_system);
  EXPECT_EQ(t[2].system, "sys");
  EXPECT_EQ(t[2].code, "");
  EXPECT_FALSE(t[3].has_system);
  EXPECT_EQ(t[3].code, "bare");
}

TEST(ParseSearchTest, EscapedCommaAndBarAreLiteral) {
  auto spec = Parse("Goal", "identifier=urn:x\\|y|a\\,b");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->criteria.size(), 1u);
  ASSERT_EQ(spec->criteria[0].tokens.size(), 1u);
  EXPECT_EQ(spec->criteria[0].tokens[0].system, "urn:x|y");
  EXPECT_EQ(spec->criteria[0].tokens[0].code, "a,b");
}

TEST(ParseSearchTest, DatePrefixes) {
  auto spec = Parse("Goal", "target-date=ge2027-01-01&target-date=lt2028,eq2030-05");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->criteria.size(), 2u);
  EXPECT_EQ(spec->criteria[0].dates[0].prefix, DatePrefix::kGe);
  EXPECT_EQ(spec->criteria[1].dates[0].prefix, DatePrefix::kLt);
  EXPECT_EQ(spec->criteria[1].dates[1].prefix, DatePrefix::kEq);
  EXPECT_THAT(Parse("Goal", "target-date=ap2027"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Parse("Goal", "target-date=2027-02-30"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Parse("Observation", "date=soon"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Parse("Goal", "_lastUpdated=gt2024-01-01T00:00:00Z"),
              ::testing::Not(StatusIs(absl::StatusCode::kInvalidArgument)));
}

TEST(ParseSearchTest, PatientAndSubjectNarrowToPatients) {
  auto spec = Parse("Goal", "patient=p1,Patient/p2&subject=Patient/p2,p3");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_TRUE(spec->patients.has_value());
  EXPECT_THAT(*spec->patients, ElementsAre("p2"));
  EXPECT_TRUE(spec->criteria.empty());
  spec = Parse("Observation", "subject:Patient=p9");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_THAT(*spec->patients, ElementsAre("p9"));
  spec = Parse("Observation", "subject=Group/g1");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_THAT(*spec->patients, IsEmpty());
  spec = Parse("Goal", "_id=a,b&_id=b,c");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_THAT(*spec->ids, ElementsAre("b"));
}

TEST(ParseSearchTest, ResultParameters) {
  auto spec = Parse("Goal", "patient=p&_count=5000&_sort=-_lastUpdated&_revinclude=Provenance:target");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->count, kMaxSearchCount);
  EXPECT_EQ(spec->sort, SearchSpec::Sort::kLastUpdatedDesc);
  EXPECT_TRUE(spec->revinclude_provenance);
  spec = Parse("Goal", "_summary=count");
  ASSERT_TRUE(spec.ok());
  EXPECT_TRUE(spec->count_only);
  spec = Parse("Goal", "_count=0");
  ASSERT_TRUE(spec.ok());
  EXPECT_TRUE(spec->count_only);
  EXPECT_THAT(Parse("Goal", "_count=-1"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Parse("Goal", "_count=ten"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ParseSearchTest, UnknownParametersStrictVersusLenient) {
  for (absl::string_view query :
       {"patient=p&foo=1", "patient=p&category:text=x", "patient=p&_sort=date", "patient=p&_summary=true",
        "patient=p&_revinclude=Observation:focus", "patient=p&_elements=id", "patient=p&_include=Goal:subject"}) {
    EXPECT_THAT(Parse("Goal", query, /*strict=*/true), StatusIs(absl::StatusCode::kUnimplemented)) << query;
    auto lenient = Parse("Goal", query, /*strict=*/false);
    ASSERT_TRUE(lenient.ok()) << query << ": " << lenient.status();
    EXPECT_EQ(lenient->ignored.size(), 1u) << query;
    // The self link keeps only what was applied.
    EXPECT_THAT(lenient->applied, ElementsAre(QueryParam{"patient", "p"})) << query;
  }
  // General parameters are never unknown.
  auto spec = Parse("Goal", "patient=p&_format=json&_pretty=true", true);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_THAT(spec->applied, ElementsAre(QueryParam{"patient", "p"}));
}

TEST(ParseSearchTest, PageTokenIsNotPartOfTheQuery) {
  auto a = Parse("Goal", "patient=p&_count=5");
  auto b = Parse("Goal", "_count=9&patient=p&_page_token=abc");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(b->page_token, "abc");
  EXPECT_EQ(CanonicalQuery(*a), CanonicalQuery(*b));
  auto c = Parse("Goal", "patient=q");
  ASSERT_TRUE(c.ok());
  EXPECT_NE(CanonicalQuery(*a), CanonicalQuery(*c));
}

// ---------------------------------------------------------------- Matches

constexpr absl::string_view kGoal = R"({
  "resourceType": "Goal", "id": "g1", "lifecycleStatus": "active",
  "achievementStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/goal-achievement",
                                    "code": "in-progress"}]},
  "category": [{"coding": [{"system": "http://loinc.org", "code": "87528-6"}]},
               {"coding": [{"code": "nosystem"}]}],
  "identifier": [{"system": "urn:ehr", "value": "G-7"}],
  "target": [{"dueDate": "2027-06-15"}, {"dueDate": "2028-01"}],
  "subject": {"reference": "Patient/p1"}
})";

bool GoalMatches(absl::string_view query, int64_t last_updated = 0) {
  auto spec = Parse("Goal", query, true);
  EXPECT_TRUE(spec.ok()) << query << ": " << spec.status();
  return spec.ok() && Matches(*spec, Json(kGoal), last_updated);
}

TEST(MatchesTest, Tokens) {
  EXPECT_TRUE(GoalMatches("lifecycle-status=active"));
  EXPECT_TRUE(GoalMatches("lifecycle-status=http://hl7.org/fhir/goal-status|active"));
  EXPECT_FALSE(GoalMatches("lifecycle-status=http://other|active"));
  EXPECT_TRUE(GoalMatches("lifecycle-status=completed,active"));
  EXPECT_FALSE(GoalMatches("lifecycle-status=completed"));
  EXPECT_TRUE(GoalMatches("category=http://loinc.org|87528-6"));
  EXPECT_TRUE(GoalMatches("category=87528-6"));
  EXPECT_TRUE(GoalMatches("category=http://loinc.org|"));
  EXPECT_FALSE(GoalMatches("category=|87528-6"));
  EXPECT_TRUE(GoalMatches("category=|nosystem"));
  EXPECT_FALSE(GoalMatches("category=http://snomed.info/sct|87528-6"));
  EXPECT_TRUE(GoalMatches("achievement-status=in-progress"));
  EXPECT_TRUE(GoalMatches("identifier=urn:ehr|G-7"));
  EXPECT_FALSE(GoalMatches("identifier=urn:other|G-7"));
  // AND across parameters.
  EXPECT_TRUE(GoalMatches("lifecycle-status=active&category=87528-6"));
  EXPECT_FALSE(GoalMatches("lifecycle-status=active&category=dietary"));
}

TEST(MatchesTest, Dates) {
  EXPECT_TRUE(GoalMatches("target-date=2027-06-15"));
  EXPECT_TRUE(GoalMatches("target-date=2028"));
  EXPECT_TRUE(GoalMatches("target-date=ge2028-01-15"));  // the second target's month reaches past it
  EXPECT_FALSE(GoalMatches("target-date=gt2028-02"));
  EXPECT_TRUE(GoalMatches("target-date=lt2027-06-16"));
  EXPECT_FALSE(GoalMatches("target-date=2026"));
  const int64_t t = Micros(2024, 5, 1, 12, 0, 0) + 123456;
  EXPECT_TRUE(GoalMatches("_lastUpdated=2024-05-01", t));
  EXPECT_TRUE(GoalMatches("_lastUpdated=ge2024-05-01T12:00:00Z", t));
  EXPECT_FALSE(GoalMatches("_lastUpdated=gt2024-05-01T12:00:01Z", t));
  EXPECT_TRUE(GoalMatches("_lastUpdated=eq2024-05-01T12:00:00.123Z", t));
}

TEST(MatchesTest, ObservationEffectiveAndFocus) {
  const rapidjson::Document obs = Json(R"({"resourceType": "Observation", "effectivePeriod": {"start": "2024-03-01"},
    "focus": [{"reference": "Goal/g1"}], "code": {"coding": [{"system": "http://loinc.org", "code": "95541-9"}]}})");
  auto check = [&](absl::string_view q) {
    auto spec = Parse("Observation", q, true);
    EXPECT_TRUE(spec.ok()) << spec.status();
    return spec.ok() && Matches(*spec, obs, 0);
  };
  EXPECT_TRUE(check("date=ge2030"));  // open-ended period
  EXPECT_FALSE(check("date=lt2024-03-01"));
  EXPECT_TRUE(check("focus=Goal/g1"));
  EXPECT_TRUE(check("focus=g1"));
  EXPECT_FALSE(check("focus=Goal/g2"));
  EXPECT_TRUE(check("code=http://loinc.org|95541-9"));
  EXPECT_FALSE(check("code=http://loinc.org|75773-2"));
}

constexpr absl::string_view kPatient = R"({
  "resourceType": "Patient", "id": "p1",
  "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": "448812"}],
  "name": [{"use": "official", "family": "Santos-Lima", "given": ["Maria", "José"], "period": {"start": "1970"}},
           {"use": "usual", "text": "Bea O'Neill"}],
  "gender": "female", "birthDate": "1950-03-14"
})";

bool PatientMatches(absl::string_view query) {
  auto spec = Parse("Patient", query, true);
  EXPECT_TRUE(spec.ok()) << query << ": " << spec.status();
  return spec.ok() && Matches(*spec, Json(kPatient), 0);
}

TEST(MatchesTest, PatientNamesStartWithTheValueCaseInsensitively) {
  EXPECT_TRUE(PatientMatches("name=santos"));
  EXPECT_TRUE(PatientMatches("name=SAN"));
  EXPECT_TRUE(PatientMatches("name=lima")) << "each word of a hyphenated family name";
  EXPECT_TRUE(PatientMatches("name=mar"));
  EXPECT_TRUE(PatientMatches("name=bea"));
  EXPECT_TRUE(PatientMatches("name=neill")) << "a word of the text after an apostrophe";
  EXPECT_FALSE(PatientMatches("name=antos")) << "not a substring search";
  EXPECT_FALSE(PatientMatches("name=official")) << "name.use is not a name";
  EXPECT_FALSE(PatientMatches("name=1970")) << "nor is a period";
  EXPECT_TRUE(PatientMatches("family=sant&given=jos"));
  EXPECT_FALSE(PatientMatches("family=maria"));
  EXPECT_TRUE(PatientMatches("name=nobody,maria")) << "a comma is OR";
  EXPECT_FALSE(PatientMatches("name=maria&name=nobody")) << "a repeated parameter is AND";
}

TEST(MatchesTest, PatientBirthdateIdentifierGender) {
  EXPECT_TRUE(PatientMatches("birthdate=1950-03-14"));
  EXPECT_TRUE(PatientMatches("birthdate=1950"));
  EXPECT_FALSE(PatientMatches("birthdate=1950-03-15"));
  EXPECT_TRUE(PatientMatches("birthdate=lt1951"));
  EXPECT_TRUE(PatientMatches("identifier=urn:oid:2.16.840.1.113883.19.5|448812"));
  EXPECT_TRUE(PatientMatches("identifier=448812"));
  EXPECT_FALSE(PatientMatches("identifier=44881"));
  EXPECT_TRUE(PatientMatches("gender=female"));
  EXPECT_FALSE(PatientMatches("gender=male"));
}

TEST(ParseSearchTest, APatientsIdIsItsPatientSoIdConfinesThePatients) {
  auto spec = Parse("Patient", "_id=p2,p1&name=san");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_TRUE(spec->patients.has_value());
  EXPECT_THAT(*spec->patients, ElementsAre("p1", "p2"));
  EXPECT_THAT(*spec->ids, ElementsAre("p1", "p2"));
  spec = Parse("Goal", "_id=g1");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->patients.has_value()) << "only a Patient's id is a patient id";
}

TEST(SearchParamsTest, TablesCoverTheIssue) {
  auto names = [](absl::string_view type) {
    std::vector<std::string> out;
    for (const auto& d : SearchParamsOf(type)) out.emplace_back(d.name);
    return out;
  };
  EXPECT_THAT(names("Goal"), ::testing::IsSupersetOf({"patient", "subject", "lifecycle-status", "achievement-status",
                                                      "category", "target-date", "identifier", "_id", "_lastUpdated"}));
  EXPECT_THAT(names("Observation"), ::testing::IsSupersetOf({"patient", "subject", "code", "category", "date", "focus",
                                                             "identifier", "_id", "_lastUpdated"}));
  EXPECT_THAT(names("List"), ::testing::IsSupersetOf({"patient", "code"}));
  EXPECT_THAT(names("Provenance"), ElementsAre("target"));
  EXPECT_THAT(names("Patient"), ::testing::IsSupersetOf({"name", "birthdate", "identifier", "_id"}));
  EXPECT_THAT(names("Practitioner"), IsEmpty());
}

}  // namespace
}  // namespace wmty::fhir
