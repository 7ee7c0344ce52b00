// Validation rules of services/domain/validation.cc, one behaviour per test.
// Every test starts from a valid resource (tests/support builders) and breaks
// exactly the thing it is about, so the only violation expected is that one.
#include "domain/validation.h"

#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "support/test_support.h"

namespace wmty::domain {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::wmty::testing::ValidGoal;
using ::wmty::testing::ValidPreference;
using ::wmty::testing::ValidWhatMatters;

constexpr char kPatient[] = "p1";

absl::Time Now() { return absl::FromCivil(absl::CivilSecond(2027, 1, 10, 9, 0, 0), absl::UTCTimeZone()); }

// (field, description) of every violation.
using Violations = std::vector<std::pair<std::string, std::string>>;

Violations ToPairs(const FieldViolations& v) {
  Violations out;
  for (const auto& fv : v.proto().field_violations()) out.emplace_back(fv.field(), fv.description());
  return out;
}

std::vector<std::string> Fields(const FieldViolations& v) {
  std::vector<std::string> out;
  for (const auto& fv : v.proto().field_violations()) out.push_back(fv.field());
  return out;
}

std::vector<std::string> GoalFields(const v1::Goal& g) {
  FieldViolations v;
  CheckGoal(g, kPatient, "goal", Now(), &v);
  return Fields(v);
}

std::vector<std::string> WhatMattersFields(const v1::WhatMatters& w) {
  FieldViolations v;
  CheckWhatMatters(w, kPatient, "what_matters", Now(), &v);
  return Fields(v);
}

std::vector<std::string> PreferenceFields(const v1::Preference& p) {
  FieldViolations v;
  CheckPreference(p, kPatient, "preference", Now(), &v);
  return Fields(v);
}

std::vector<std::string> PrioritiesFields(const v1::Priorities& p) {
  FieldViolations v;
  CheckPriorities(p, kPatient, "priorities", Now(), &v);
  return Fields(v);
}

Violations CheckTextOf(absl::string_view value, bool required = true, size_t max_bytes = kMaxTextBytes) {
  FieldViolations v;
  CheckText(value, "statement", required, max_bytes, &v);
  return ToPairs(v);
}

v1::Preference PreferenceOfKind(v1::PreferenceKind kind) {
  v1::Preference p = ValidPreference();
  p.set_kind(kind);
  p.clear_detail();
  p.set_value_text("in my own words");
  return p;
}

v1::Preference ContactWindow(const std::string& start, const std::string& end) {
  v1::Preference p = PreferenceOfKind(v1::CONTACT_TIME_WINDOW);
  auto* w = p.mutable_contact_window();
  w->add_days_of_week(1);
  w->add_days_of_week(5);
  w->set_start_time(start);
  w->set_end_time(end);
  w->set_time_zone("America/Chicago");
  return p;
}

v1::Preference Language(const std::string& tag) {
  v1::Preference p = PreferenceOfKind(v1::LANGUAGE);
  p.mutable_language()->set_language(tag);
  return p;
}

v1::Goal GoalWithDates(const std::string& start, const std::string& target) {
  v1::Goal g = ValidGoal();
  g.set_start_date(start);
  g.set_target_date(target);
  return g;
}

// ---------------------------------------------------------------- baseline

TEST(ValidationTest, ValidBuildersHaveNoViolations) {
  EXPECT_THAT(GoalFields(ValidGoal()), IsEmpty());
  EXPECT_THAT(WhatMattersFields(ValidWhatMatters()), IsEmpty());
  EXPECT_THAT(PreferenceFields(ValidPreference()), IsEmpty());
}

TEST(ValidationTest, ViolationsBecomeInvalidArgumentNamingEveryField) {
  v1::Goal g = ValidGoal();
  g.set_description("");
  g.set_lifecycle_status(v1::GOAL_LIFECYCLE_STATUS_UNSPECIFIED);
  FieldViolations v;
  CheckGoal(g, kPatient, "goal", Now(), &v);
  absl::Status s = v.ToStatus();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wmty::testing::ViolatedFields(s), ElementsAre("goal.description", "goal.lifecycle_status"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("goal.description"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("and 1 more"));
}

// ---------------------------------------------------------------- free text

TEST(CheckTextTest, EmptyRequiredTextIsRequired) {
  EXPECT_THAT(CheckTextOf(""), ElementsAre(std::make_pair("statement", "required")));
  EXPECT_THAT(CheckTextOf("", /*required=*/false), IsEmpty());
}

TEST(CheckTextTest, AsciiWhitespaceOnlyIsBlank) {
  for (const char* blank : {" ", "   ", "\t", " \r\n\t "}) {
    EXPECT_THAT(CheckTextOf(blank), ElementsAre(std::make_pair("statement", "must not be blank")))
        << "value: '" << blank << "'";
  }
}

TEST(CheckTextTest, UnicodeWhitespaceOnlyIsBlank) {
  const std::vector<std::pair<std::string, std::string>> spaces = {
      {"U+0085 next line", "\u0085"},
      {"U+00A0 no-break space", "\u00A0"},
      {"U+1680 ogham space mark", "\u1680"},
      {"U+2002 en space", "\u2002"},
      {"U+2003 em space", "\u2003"},
      {"U+2009 thin space", "\u2009"},
      {"U+200A hair space", "\u200A"},
      {"U+200B zero width space", "\u200B"},
      {"U+2028 line separator", "\u2028"},
      {"U+2029 paragraph separator", "\u2029"},
      {"U+202F narrow no-break space", "\u202F"},
      {"U+205F medium mathematical space", "\u205F"},
      {"U+3000 ideographic space", "\u3000"},
      {"U+FEFF byte order mark", "\uFEFF"},
  };
  for (const auto& [label, space] : spaces) {
    EXPECT_THAT(CheckTextOf(space), ElementsAre(std::make_pair("statement", "must not be blank"))) << label;
    EXPECT_THAT(CheckTextOf(absl::StrCat(" ", space, space, "\t")),
                ElementsAre(std::make_pair("statement", "must not be blank")))
        << label << " mixed with ASCII spaces";
  }
}

TEST(CheckTextTest, TextWithSpacesAroundWordsIsNotBlank) {
  EXPECT_THAT(CheckTextOf("\u00A0 family \u3000"), IsEmpty());
  EXPECT_THAT(CheckTextOf("Estar en casa con mi nieta"), IsEmpty());
  EXPECT_THAT(CheckTextOf("家にいたい"), IsEmpty());
  // Characters that share a lead byte with the Unicode spaces are not spaces.
  EXPECT_THAT(CheckTextOf("\u2014"), IsEmpty());  // em dash (E2 80 94)
  EXPECT_THAT(CheckTextOf("\u3001"), IsEmpty());  // ideographic comma (E3 80 81)
  EXPECT_THAT(CheckTextOf("\u00A9"), IsEmpty());  // copyright sign (C2 A9)
}

TEST(CheckTextTest, TextUpTo16KiBIsAcceptedAndLongerIsRefused) {
  EXPECT_THAT(CheckTextOf(std::string(kMaxTextBytes, 'a')), IsEmpty());
  auto too_long = CheckTextOf(std::string(kMaxTextBytes + 1, 'a'));
  ASSERT_EQ(too_long.size(), 1u);
  EXPECT_EQ(too_long[0].first, "statement");
  EXPECT_THAT(too_long[0].second, HasSubstr("16384 bytes"));
}

TEST(CheckTextTest, LimitCountsBytesNotCharacters) {
  // 8192 two-byte characters are exactly 16 KiB; one more is over.
  std::string accents;
  for (int i = 0; i < 8192; ++i) accents += "\u00E9";
  EXPECT_THAT(CheckTextOf(accents), IsEmpty());
  accents += "\u00E9";
  EXPECT_THAT(CheckTextOf(accents), ElementsAre(::testing::Pair("statement", HasSubstr("longer than"))));
}

TEST(CheckTextTest, ControlCharactersAreRefused) {
  const std::vector<std::string> values = {std::string("a\0b", 3), "bell\a",     "esc\x1b[31m",  "\x01",
                                           "delete\x7f",           "form\ffeed", "vertical\vtab"};
  for (const auto& value : values) {
    EXPECT_THAT(CheckTextOf(value), ElementsAre(std::make_pair("statement", "contains control characters")))
        << "value bytes: " << value.size();
  }
}

TEST(CheckTextTest, TabCarriageReturnAndNewlineAreAllowed) {
  EXPECT_THAT(CheckTextOf("line one\r\nline two\tand a tab"), IsEmpty());
}

TEST(CheckTextTest, InvalidUtf8IsRefused) {
  const std::vector<std::pair<std::string, std::string>> values = {
      {"lone continuation byte", "abc\x80"},
      {"invalid lead byte", "\xff"},
      {"truncated 3-byte sequence", "\xe2\x82"},
      {"bad continuation", "\xc3\x28"},
      {"overlong slash", "\xc0\xaf"},
      {"overlong NUL", "\xc0\x80"},
      {"UTF-16 surrogate", "\xed\xa0\x80"},
      {"beyond U+10FFFF", "\xf4\x90\x80\x80"},
      {"Latin-1 text", "caf\xe9"},
  };
  for (const auto& [label, value] : values) {
    EXPECT_THAT(CheckTextOf(value), ElementsAre(std::make_pair("statement", "not valid UTF-8"))) << label;
  }
}

TEST(CheckTextTest, RequestIdUpTo128PrintableBytes) {
  FieldViolations ok;
  CheckRequestId(std::string(kMaxRequestIdBytes, 'r'), "request_id", &ok);
  EXPECT_TRUE(ok.empty());
  FieldViolations too_long;
  CheckRequestId(std::string(kMaxRequestIdBytes + 1, 'r'), "request_id", &too_long);
  EXPECT_THAT(Fields(too_long), ElementsAre("request_id"));
  FieldViolations nul;
  CheckRequestId(std::string("req\0id", 6), "request_id", &nul);
  EXPECT_THAT(Fields(nul), ElementsAre("request_id"));
  FieldViolations bad_utf8;
  CheckRequestId("req\xff", "request_id", &bad_utf8);
  EXPECT_THAT(Fields(bad_utf8), ElementsAre("request_id"));
}

TEST(ValidationTest, BlankStatementDescriptionAndNoteAreRefusedOnResources) {
  v1::WhatMatters w = ValidWhatMatters("\u3000\u00A0 ");
  EXPECT_THAT(WhatMattersFields(w), ElementsAre("what_matters.statement"));

  v1::Goal g = ValidGoal(" \t ");
  EXPECT_THAT(GoalFields(g), ElementsAre("goal.description"));

  v1::Goal with_note = ValidGoal();
  with_note.add_notes()->set_text("She wants to dance too");
  with_note.add_notes()->set_text("  ");
  EXPECT_THAT(GoalFields(with_note), ElementsAre("goal.notes[1].text"));
}

TEST(ValidationTest, ShortTextFieldsAreLimitedTo256Bytes) {
  v1::WhatMatters w = ValidWhatMatters();
  w.set_prompt(std::string(kMaxShortTextBytes, 'q'));
  EXPECT_THAT(WhatMattersFields(w), IsEmpty());
  w.set_prompt(std::string(kMaxShortTextBytes + 1, 'q'));
  EXPECT_THAT(WhatMattersFields(w), ElementsAre("what_matters.prompt"));
}

// ---------------------------------------------------------------- enums

TEST(EnumValidationTest, UnknownEnumValuesAreRefused) {
  v1::Goal g = ValidGoal();
  g.set_lifecycle_status(static_cast<v1::GoalLifecycleStatus>(99));
  g.set_achievement_status(static_cast<v1::GoalAchievementStatus>(42));
  g.set_priority(static_cast<v1::GoalPriority>(-1));
  g.add_categories(static_cast<v1::GoalCategory>(77));
  EXPECT_THAT(GoalFields(g),
              ElementsAre("goal.lifecycle_status", "goal.achievement_status", "goal.priority", "goal.categories[1]"));

  v1::WhatMatters w = ValidWhatMatters();
  w.add_life_domains(static_cast<v1::LifeDomain>(11));
  w.add_dignity_elements(static_cast<v1::DignityElement>(1000));
  EXPECT_THAT(WhatMattersFields(w), ElementsAre("what_matters.life_domains[1]", "what_matters.dignity_elements[1]"));

  v1::Goal channel = ValidGoal();
  channel.mutable_provenance()->set_channel(static_cast<v1::Channel>(5));
  EXPECT_THAT(GoalFields(channel), ElementsAre("goal.provenance.channel"));
}

TEST(EnumValidationTest, UnspecifiedInsideRepeatedEnumsIsRefused) {
  v1::WhatMatters w = ValidWhatMatters();
  w.add_life_domains(v1::LIFE_DOMAIN_UNSPECIFIED);
  EXPECT_THAT(WhatMattersFields(w), ElementsAre("what_matters.life_domains[1]"));
}

TEST(EnumValidationTest, RepeatedEnumsMustNotRepeat) {
  v1::WhatMatters w = ValidWhatMatters();
  w.clear_life_domains();
  w.add_life_domains(v1::FAMILY_AND_RELATIONSHIPS);
  w.add_life_domains(v1::HOBBIES_AND_JOY);
  w.add_life_domains(v1::FAMILY_AND_RELATIONSHIPS);
  FieldViolations v;
  CheckWhatMatters(w, kPatient, "what_matters", Now(), &v);
  EXPECT_THAT(ToPairs(v), ElementsAre(std::make_pair("what_matters.life_domains[2]", "duplicate")));
}

TEST(EnumValidationTest, AtMost20Tags) {
  v1::Goal g = ValidGoal();
  g.clear_categories();
  for (int i = 0; i < 21; ++i) g.add_categories(static_cast<v1::GoalCategory>(1 + i % 6));
  EXPECT_THAT(GoalFields(g), ::testing::Contains("goal.categories"));
}

TEST(EnumValidationTest, RequiredEnumsMustBeSet) {
  v1::Goal g = ValidGoal();
  g.set_lifecycle_status(v1::GOAL_LIFECYCLE_STATUS_UNSPECIFIED);
  EXPECT_THAT(GoalFields(g), ElementsAre("goal.lifecycle_status"));

  v1::Preference p = ValidPreference();
  p.set_kind(v1::PREFERENCE_KIND_UNSPECIFIED);
  // The channel ranking is then also "only for COMMUNICATION_CHANNELS".
  EXPECT_THAT(PreferenceFields(p), ElementsAre("preference.kind", "preference.channel_ranking"));
}

TEST(EnumValidationTest, OptionalEnumsMayBeUnspecified) {
  v1::Goal g = ValidGoal();
  g.set_achievement_status(v1::GOAL_ACHIEVEMENT_STATUS_UNSPECIFIED);
  g.set_priority(v1::GOAL_PRIORITY_UNSPECIFIED);
  g.mutable_provenance()->set_channel(v1::CHANNEL_UNSPECIFIED);
  EXPECT_THAT(GoalFields(g), IsEmpty());
}

// ---------------------------------------------------------------- patient

TEST(PatientValidationTest, PatientRefMustMatchTheResourceName) {
  v1::Goal g = ValidGoal();
  g.mutable_patient()->set_id(kPatient);
  EXPECT_THAT(GoalFields(g), IsEmpty());
  g.mutable_patient()->set_id("p2");
  EXPECT_THAT(GoalFields(g), ElementsAre("goal.patient.id"));
}

TEST(PatientValidationTest, IdentifierSystemAndValueGoTogether) {
  v1::Goal g = ValidGoal();
  g.mutable_patient()->set_identifier_system("urn:oid:2.16.840.1.113883.19.5");
  EXPECT_THAT(GoalFields(g), ElementsAre("goal.patient.identifier_value"));
  g.mutable_patient()->set_identifier_value("MRN-0042");
  EXPECT_THAT(GoalFields(g), IsEmpty());
}

// ---------------------------------------------------------------- provenance

TEST(ProvenanceValidationTest, ProvenanceIsRequired) {
  v1::Goal g = ValidGoal();
  g.clear_provenance();
  EXPECT_THAT(GoalFields(g), ElementsAre("goal.provenance"));
}

TEST(ProvenanceValidationTest, RecorderPractitionerIdIsRequiredAndAnId) {
  v1::Goal g = ValidGoal();
  g.mutable_provenance()->clear_recorded_by();
  EXPECT_THAT(GoalFields(g), ElementsAre("goal.provenance.recorded_by.practitioner_id"));
  g.mutable_provenance()->mutable_recorded_by()->set_practitioner_id("nurse/17");
  EXPECT_THAT(GoalFields(g), ElementsAre("goal.provenance.recorded_by.practitioner_id"));
  g.mutable_provenance()->mutable_recorded_by()->set_practitioner_id("nurse-17");
  EXPECT_THAT(GoalFields(g), IsEmpty());
}

TEST(ProvenanceValidationTest, EncounterIdFollowsTheIdRule) {
  v1::Goal g = ValidGoal();
  g.mutable_provenance()->set_encounter_id("enc 1");
  EXPECT_THAT(GoalFields(g), ElementsAre("goal.provenance.encounter_id"));
}

TEST(ProvenanceValidationTest, RelatedPersonSpeakerNeedsNameAndRelationship) {
  v1::Goal g = ValidGoal();
  auto* said_by = g.mutable_provenance()->mutable_said_by();
  said_by->set_kind(v1::Speaker::RELATED_PERSON);
  EXPECT_THAT(GoalFields(g), ElementsAre("goal.provenance.said_by.name", "goal.provenance.said_by.relationship"));
  said_by->set_name("Rosa Diaz");
  EXPECT_THAT(GoalFields(g), ElementsAre("goal.provenance.said_by.relationship"));
  said_by->set_relationship("  ");
  EXPECT_THAT(GoalFields(g), ElementsAre("goal.provenance.said_by.relationship"));
  said_by->set_relationship("daughter");
  EXPECT_THAT(GoalFields(g), IsEmpty());
}

TEST(ProvenanceValidationTest, PatientSpeakerNeedsNoName) {
  v1::Goal g = ValidGoal();
  g.mutable_provenance()->mutable_said_by()->set_kind(v1::Speaker::PATIENT);
  g.mutable_provenance()->mutable_said_by()->clear_name();
  EXPECT_THAT(GoalFields(g), IsEmpty());
}

TEST(ProvenanceValidationTest, AbsentSpeakerIsValidAndMeansNotStated) {
  v1::Goal g = ValidGoal();
  g.mutable_provenance()->clear_said_by();
  EXPECT_THAT(GoalFields(g), IsEmpty());
  EXPECT_EQ(SpeakerOrNotStated(g.provenance().said_by()).kind(), v1::Speaker::NOT_STATED);
  g.mutable_provenance()->mutable_said_by()->set_kind(v1::Speaker::PATIENT);
  EXPECT_EQ(SpeakerOrNotStated(g.provenance().said_by()).kind(), v1::Speaker::PATIENT);
}

TEST(ProvenanceValidationTest, SpeakerDetailsNeedAKind) {
  v1::Goal g = ValidGoal();
  auto* said_by = g.mutable_provenance()->mutable_said_by();
  said_by->set_kind(v1::Speaker::KIND_UNSPECIFIED);
  said_by->set_relationship("daughter");
  EXPECT_THAT(GoalFields(g), ElementsAre("goal.provenance.said_by.kind"));
}

TEST(ProvenanceValidationTest, NotStatedSpeakerTakesNoDetails) {
  v1::Goal g = ValidGoal();
  auto* said_by = g.mutable_provenance()->mutable_said_by();
  said_by->set_kind(v1::Speaker::NOT_STATED);
  EXPECT_THAT(GoalFields(g), IsEmpty());
  said_by->set_name("Rosa Diaz");
  EXPECT_THAT(GoalFields(g), ElementsAre("goal.provenance.said_by.kind"));
}

TEST(ProvenanceValidationTest, PractitionerSpeakerNeedsAnId) {
  v1::Goal g = ValidGoal();
  auto* said_by = g.mutable_provenance()->mutable_said_by();
  said_by->set_kind(v1::Speaker::PRACTITIONER);
  EXPECT_THAT(GoalFields(g), ElementsAre("goal.provenance.said_by.practitioner_id"));
  said_by->set_practitioner_id("md/4");
  EXPECT_THAT(GoalFields(g), ElementsAre("goal.provenance.said_by.practitioner_id"));
  said_by->set_practitioner_id("md-4");
  EXPECT_THAT(GoalFields(g), IsEmpty());
  said_by->set_name("Dr. Lee");
  EXPECT_THAT(GoalFields(g), IsEmpty());
  said_by->set_relationship("doctor");
  EXPECT_THAT(GoalFields(g), ElementsAre("goal.provenance.said_by.relationship"));
}

TEST(ProvenanceValidationTest, PractitionerIdOnlyForPractitioners) {
  v1::Goal g = ValidGoal();
  g.mutable_provenance()->mutable_said_by()->set_kind(v1::Speaker::PATIENT);
  g.mutable_provenance()->mutable_said_by()->set_practitioner_id("md-4");
  EXPECT_THAT(GoalFields(g), ElementsAre("goal.provenance.said_by.practitioner_id"));
}

TEST(ProvenanceValidationTest, SaidTimeMayNotBeMoreThanFiveMinutesAhead) {
  v1::Goal g = ValidGoal();
  g.mutable_provenance()->mutable_said_time()->set_seconds(absl::ToUnixSeconds(Now() + absl::Minutes(4)));
  EXPECT_THAT(GoalFields(g), IsEmpty());
  g.mutable_provenance()->mutable_said_time()->set_seconds(absl::ToUnixSeconds(Now() + absl::Minutes(6)));
  EXPECT_THAT(GoalFields(g), ElementsAre("goal.provenance.said_time"));
  g.mutable_provenance()->mutable_said_time()->set_seconds(0);
  g.mutable_provenance()->mutable_said_time()->set_nanos(-1);
  EXPECT_THAT(GoalFields(g), ElementsAre("goal.provenance.said_time"));
}

// ---------------------------------------------------------------- goal dates

TEST(FhirDateTest, AcceptsYearYearMonthAndFullDates) {
  for (const char* date : {"2027", "2027-06", "2027-06-15", "2024-02-29", "2000-02-29", "0001-01-01", "9999-12-31"}) {
    EXPECT_TRUE(IsValidFhirDate(date)) << date;
  }
}

TEST(FhirDateTest, RefusesOtherFormatsAndImpossibleDates) {
  for (const char* date : {"",           "27",         "202",        "20270",
                           "2027-6",     "2027-06-1",  "2027/06/15", "2027-06-15T10:00:00Z",
                           "15-06-2027", " 2027",      "2027 ",      "2027-13",
                           "2027-00",    "2027-06-00", "2027-06-31", "2023-02-29",
                           "1900-02-29", "0000",       "2027-02-30", "+027-01-01",
                           "2027--1",    "abcd"}) {
    EXPECT_FALSE(IsValidFhirDate(date)) << "'" << date << "'";
  }
}

TEST(GoalDateValidationTest, MalformedDatesNameTheirField) {
  EXPECT_THAT(GoalFields(GoalWithDates("2027-6-1", "")), ElementsAre("goal.start_date"));
  EXPECT_THAT(GoalFields(GoalWithDates("", "June 2027")), ElementsAre("goal.target_date"));
  EXPECT_THAT(GoalFields(GoalWithDates("", "")), IsEmpty());
}

TEST(GoalDateValidationTest, TargetBeforeStartIsRefused) {
  EXPECT_THAT(GoalFields(GoalWithDates("2027-06-15", "2027-06-14")), ElementsAre("goal.target_date"));
  EXPECT_THAT(GoalFields(GoalWithDates("2027-06-15", "2027-06-15")), IsEmpty());
  EXPECT_THAT(GoalFields(GoalWithDates("2027-06-15", "2028-01-01")), IsEmpty());
}

TEST(GoalDateValidationTest, PartialDatesCompareByTheDaysTheyCover) {
  // A partial target overlapping the start is not "before" it.
  EXPECT_THAT(GoalFields(GoalWithDates("2027-06-15", "2027-06")), IsEmpty());
  EXPECT_THAT(GoalFields(GoalWithDates("2027-06-15", "2027")), IsEmpty());
  EXPECT_THAT(GoalFields(GoalWithDates("2027", "2027-01-01")), IsEmpty());
  EXPECT_THAT(GoalFields(GoalWithDates("2027-06", "2027-06-30")), IsEmpty());
  // Entirely before the start is.
  EXPECT_THAT(GoalFields(GoalWithDates("2027-06-15", "2027-05")), ElementsAre("goal.target_date"));
  EXPECT_THAT(GoalFields(GoalWithDates("2027-03", "2026")), ElementsAre("goal.target_date"));
  EXPECT_THAT(GoalFields(GoalWithDates("2027", "2026-12-31")), ElementsAre("goal.target_date"));
  EXPECT_THAT(GoalFields(GoalWithDates("2027-06", "2027-05-31")), ElementsAre("goal.target_date"));
}

// ---------------------------------------------------------------- goal links

TEST(GoalLinkValidationTest, WhatMattersLinksMustBeWhatMattersOfTheSamePatient) {
  v1::Goal g = ValidGoal();
  g.add_what_matters("patients/p1/whatMatters/W1");
  EXPECT_THAT(GoalFields(g), IsEmpty());

  g.add_what_matters("patients/p2/whatMatters/W2");  // other patient
  g.add_what_matters("patients/p1/goals/G1");        // not a whatMatters
  g.add_what_matters("whatMatters/W3");              // not a name
  g.add_what_matters("patients/p1/whatMatters/W1");  // repeat
  EXPECT_THAT(GoalFields(g), ElementsAre("goal.what_matters[1]", "goal.what_matters[2]", "goal.what_matters[3]",
                                         "goal.what_matters[4]"));
}

TEST(PrioritiesValidationTest, ItemsNameResourcesOfTheSamePatientOnce) {
  v1::Priorities p;
  p.set_name("patients/p1/priorities");
  *p.mutable_provenance() = wmty::testing::NurseProvenance();
  p.add_items("patients/p1/goals/G1");
  p.add_items("patients/p1/whatMatters/W1");
  p.add_items("patients/p1/preferences/P1");
  EXPECT_THAT(PrioritiesFields(p), IsEmpty());

  p.add_items("patients/p1/priorities");
  p.add_items("patients/p2/goals/G9");
  p.add_items("patients/p1/goals/G1");
  EXPECT_THAT(PrioritiesFields(p), ElementsAre("priorities.items[3]", "priorities.items[4]", "priorities.items[5]"));
}

// ---------------------------------------------------------------- preferences

TEST(PreferenceValidationTest, DetailMustMatchKind) {
  v1::Preference p = PreferenceOfKind(v1::OTHER_PREFERENCE);
  p.mutable_channel_ranking()->add_channels(v1::SMS);
  EXPECT_THAT(PreferenceFields(p), ElementsAre("preference.channel_ranking"));

  v1::Preference lang = PreferenceOfKind(v1::LANGUAGE);
  lang.mutable_family_involvement()->set_person_name("Rosa");
  EXPECT_THAT(PreferenceFields(lang), ElementsAre("preference.family_involvement", "preference.language"));

  v1::Preference window = PreferenceOfKind(v1::NAME_TO_USE);
  *window.mutable_contact_window() = ContactWindow("08:00", "12:00").contact_window();
  EXPECT_THAT(PreferenceFields(window), ElementsAre("preference.contact_window"));
}

TEST(PreferenceValidationTest, KindsWithADetailRequireIt) {
  EXPECT_THAT(PreferenceFields(PreferenceOfKind(v1::COMMUNICATION_CHANNELS)),
              ElementsAre("preference.channel_ranking"));
  EXPECT_THAT(PreferenceFields(PreferenceOfKind(v1::CONTACT_TIME_WINDOW)), ElementsAre("preference.contact_window"));
  EXPECT_THAT(PreferenceFields(PreferenceOfKind(v1::LANGUAGE)), ElementsAre("preference.language"));
  // FAMILY_INVOLVEMENT may be said in words only.
  EXPECT_THAT(PreferenceFields(PreferenceOfKind(v1::FAMILY_INVOLVEMENT)), IsEmpty());
}

TEST(PreferenceValidationTest, NeedsSomeValue) {
  v1::Preference p = PreferenceOfKind(v1::LIKES_AND_JOYS);
  p.clear_value_text();
  EXPECT_THAT(PreferenceFields(p), ElementsAre("preference.value_text"));
  p.mutable_value_code()->set_code("music");
  EXPECT_THAT(PreferenceFields(p), IsEmpty());
}

TEST(PreferenceValidationTest, ValueCodeNeedsACode) {
  v1::Preference p = PreferenceOfKind(v1::LIKES_AND_JOYS);
  p.mutable_value_code()->set_display("Music");
  EXPECT_THAT(PreferenceFields(p), ElementsAre("preference.value_code.code"));
}

TEST(PreferenceValidationTest, BlankValueTextIsRefused) {
  v1::Preference p = PreferenceOfKind(v1::PRONOUNS);
  p.set_value_text("\u00A0 ");
  EXPECT_THAT(PreferenceFields(p), ElementsAre("preference.value_text"));
}

TEST(PreferenceValidationTest, ChannelRankingMustBeNonEmptyWithoutRepeats) {
  v1::Preference p = ValidPreference();
  p.mutable_channel_ranking()->add_channels(v1::SMS);  // SMS, PHONE_CALL, SMS
  FieldViolations v;
  CheckPreference(p, kPatient, "preference", Now(), &v);
  EXPECT_THAT(ToPairs(v), ElementsAre(std::make_pair("preference.channel_ranking.channels[2]", "duplicate")));

  v1::Preference empty = ValidPreference();
  empty.mutable_channel_ranking()->clear_channels();
  EXPECT_THAT(PreferenceFields(empty), ElementsAre("preference.channel_ranking.channels"));

  v1::Preference unknown = ValidPreference();
  unknown.mutable_channel_ranking()->add_channels(static_cast<v1::ContactChannel>(8));
  EXPECT_THAT(PreferenceFields(unknown), ElementsAre("preference.channel_ranking.channels[2]"));
}

TEST(PreferenceValidationTest, ContactWindowTimesAreHHMM) {
  EXPECT_THAT(PreferenceFields(ContactWindow("08:30", "17:00")), IsEmpty());
  EXPECT_THAT(PreferenceFields(ContactWindow("00:00", "23:59")), IsEmpty());
  for (const char* bad : {"", "8:30", "08:3", "0830", "08-30", "08:30:00", "24:00", "12:60", "-1:30", "+1:30", "01:+5",
                          "ab:cd", " 9:30", "9 :30", "09: 5", "09:5 ", "\t9:30", "0x:10"}) {
    EXPECT_THAT(PreferenceFields(ContactWindow(bad, "17:00")), ElementsAre("preference.contact_window.start_time"))
        << "'" << bad << "'";
    EXPECT_THAT(PreferenceFields(ContactWindow("08:00", bad)), ElementsAre("preference.contact_window.end_time"))
        << "'" << bad << "'";
  }
}

TEST(PreferenceValidationTest, ContactWindowDaysAreDistinctIsoWeekdays) {
  v1::Preference p = ContactWindow("08:00", "12:00");
  p.mutable_contact_window()->add_days_of_week(7);
  EXPECT_THAT(PreferenceFields(p), IsEmpty());
  p.mutable_contact_window()->add_days_of_week(0);
  p.mutable_contact_window()->add_days_of_week(8);
  p.mutable_contact_window()->add_days_of_week(5);
  EXPECT_THAT(PreferenceFields(p),
              ElementsAre("preference.contact_window.days_of_week[3]", "preference.contact_window.days_of_week[4]",
                          "preference.contact_window.days_of_week[5]"));
}

TEST(PreferenceValidationTest, LanguageIsABcp47Tag) {
  for (const char* tag : {"es", "pt-BR", "zh-Hant-TW", "en-US", "sgn-ASE", "yue", "es-419"}) {
    EXPECT_THAT(PreferenceFields(Language(tag)), IsEmpty()) << tag;
  }
  for (const char* tag : {"", "pt_BR", "en US", "español", "-", "es-", "-es", "es--MX", "123", "en-abcdefghi",
                          "abcdefghijklmnopqrstuvwxyzabcdefghijkl"}) {
    EXPECT_THAT(PreferenceFields(Language(tag)), ElementsAre("preference.language.language")) << "'" << tag << "'";
  }
}

TEST(PreferenceValidationTest, FamilyInvolvementNeedsAPersonName) {
  v1::Preference p = PreferenceOfKind(v1::FAMILY_INVOLVEMENT);
  p.mutable_family_involvement()->set_relationship("son");
  EXPECT_THAT(PreferenceFields(p), ElementsAre("preference.family_involvement.person_name"));
  p.mutable_family_involvement()->set_person_name("Luis");
  EXPECT_THAT(PreferenceFields(p), IsEmpty());
}

}  // namespace
}  // namespace wmty::domain
