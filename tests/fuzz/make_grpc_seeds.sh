#!/usr/bin/env bash
# Regenerates the seed corpus of grpc_request_fuzz (tests/fuzz/corpus/
# grpc_request_fuzz) from the text-format requests below: each seed is one
# byte (the RPC's index in grpc_request_fuzz.cc's table) and the request
# serialized by protoc --encode. Names ending in /0 are the target's fixtures.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="$root/tests/fuzz/corpus/grpc_request_fuzz"
mkdir -p "$out"

PROV='provenance { recorded_by { practitioner_id: "nurse-17" display_name: "Ana Ruiz" role: "RN" }
  said_by { kind: PATIENT } encounter_id: "enc-1" channel: BEDSIDE }'

seed() {  # name index message text
  local name="$1" index="$2" message="$3" text="$4"
  {
    printf "\\x$(printf %02x "$index")"
    printf '%s\n' "$text" | protoc --proto_path="$root/proto" --proto_path=/usr/include \
      --encode="wmty.v1.$message" wmty/v1/service.proto
  } >"$out/$name"
}

seed create-what-matters 0 CreateWhatMattersRequest "parent: \"patients/p1\" request_id: \"r-1\"
  what_matters { statement: \"Being home for my granddaughter's birthday\" prompt: \"What matters most?\"
  life_domains: FAMILY_AND_RELATIONSHIPS dignity_elements: INCLUSION $PROV }"
seed create-what-matters-blank 0 CreateWhatMattersRequest "parent: \"patients/p1\" what_matters { statement: \"  \" }"
seed get-what-matters 1 GetResourceRequest 'name: "patients/p1/whatMatters/0"'
seed list-what-matters 2 ListWhatMattersRequest 'parent: "patients/p1" page_size: 1 life_domains: HOBBIES_AND_JOY
  filter { show_retracted: true updated_since { seconds: 1700000000 } }'
seed update-what-matters-mask 3 UpdateWhatMattersRequest "what_matters { name: \"patients/p1/whatMatters/0\"
  etag: \"W/\\\"1\\\"\" statement: \"Walking my dog, even slowly\" $PROV } update_mask { paths: \"statement\" }"
seed retract-what-matters 4 RetractRequest 'name: "patients/p1/whatMatters/0" reason: "entered in error"
  retracted_by { practitioner_id: "nurse-17" } request_id: "retract-1"'
seed list-what-matters-versions 5 ListVersionsRequest 'name: "patients/p1/whatMatters/0" page_size: 1'
seed create-goal 6 CreateGoalRequest "parent: \"patients/p1\" goal { description: \"Walk to the mailbox\"
  lifecycle_status: GOAL_ACTIVE achievement_status: IN_PROGRESS priority: HIGH_PRIORITY categories: BEHAVIORAL
  start_date: \"2026-11-01\" target_date: \"2027-06-15\" what_matters: \"patients/p1/whatMatters/0\"
  notes { text: \"Practising with a cane\" author: \"nurse-17\" time { seconds: 1790000000 } } $PROV }"
seed create-goal-bad-date 6 CreateGoalRequest "parent: \"patients/p1\" goal { description: \"Walk\"
  lifecycle_status: GOAL_ACTIVE target_date: \"2027-02-30\" $PROV }"
seed get-goal 7 GetResourceRequest 'name: "patients/p1/goals/0"'
seed list-goals 8 ListGoalsRequest 'parent: "patients/p1" page_size: 1'
seed update-goal 9 UpdateGoalRequest "goal { name: \"patients/p1/goals/0\" etag: \"W/\\\"1\\\"\"
  description: \"Walk to the park\" lifecycle_status: ON_HOLD $PROV } update_mask { paths: \"lifecycle_status\" paths: \"description\" }"
seed update-goal-bad-mask 9 UpdateGoalRequest "goal { name: \"patients/p1/goals/0\" etag: \"W/\\\"1\\\"\" $PROV }
  update_mask { paths: \"version\" paths: \"notes.text\" }"
seed retract-goal 10 RetractRequest 'name: "patients/p1/goals/0" etag: "W/\"1\"" retracted_by { practitioner_id: "nurse-17" }'
seed list-goal-versions 11 ListVersionsRequest 'name: "patients/p1/goals/0"'
seed create-preference 12 CreatePreferenceRequest "parent: \"patients/p1\" preference { kind: CONTACT_TIME_WINDOW
  value_text: \"Mornings\" contact_window { days_of_week: 1 days_of_week: 5 start_time: \"09:00\" end_time: \"11:30\"
  time_zone: \"America/Chicago\" } $PROV }"
seed create-preference-channels 12 CreatePreferenceRequest "parent: \"patients/p1\" preference { kind: COMMUNICATION_CHANNELS
  channel_ranking { channels: SMS channels: PHONE_CALL } value_code { system: \"http://loinc.org\" code: \"x\" } $PROV }"
seed get-preference 13 GetResourceRequest 'name: "patients/p1/preferences/0"'
seed list-preferences 14 ListPreferencesRequest 'parent: "patients/p1" page_size: 1'
seed update-preference 15 UpdatePreferenceRequest "preference { name: \"patients/p1/preferences/0\" etag: \"W/\\\"1\\\"\"
  kind: LANGUAGE language { language: \"es\" } $PROV }"
seed retract-preference 16 RetractRequest 'name: "patients/p1/preferences/0" retracted_by { practitioner_id: "nurse-17" }'
seed list-preference-versions 17 ListVersionsRequest 'name: "patients/p1/preferences/0"'
seed create-goal-score 18 CreateGoalScoreRequest "parent: \"patients/p1\" goal_score { goal: \"patients/p1/goals/0\"
  score_type: PATIENT_FOLLOW_UP score: 1 $PROV }"
seed get-goal-score 19 GetResourceRequest 'name: "patients/p1/goalScores/0"'
seed list-goal-scores 20 ListGoalScoresRequest 'parent: "patients/p1" page_size: 1'
seed update-goal-score 21 UpdateGoalScoreRequest "goal_score { name: \"patients/p1/goalScores/0\" etag: \"W/\\\"1\\\"\"
  goal: \"patients/p1/goals/0\" score_type: INITIAL score: 2 $PROV }"
seed retract-goal-score 22 RetractRequest 'name: "patients/p1/goalScores/0" retracted_by { practitioner_id: "nurse-17" }'
seed list-goal-score-versions 23 ListVersionsRequest 'name: "patients/p1/goalScores/0"'
seed get-priorities 24 GetResourceRequest 'name: "patients/p1/priorities"'
seed update-priorities 25 UpdatePrioritiesRequest "priorities { name: \"patients/p1/priorities\" etag: \"W/\\\"1\\\"\"
  items: \"patients/p1/goals/0\" items: \"patients/p1/preferences/0\" items: \"patients/p1/whatMatters/0\" $PROV }"
seed list-priorities-versions 26 ListVersionsRequest 'name: "patients/p1/priorities" page_size: 1'
seed get-patient-summary 27 GetPatientSummaryRequest 'parent: "patients/p1"'
seed list-goals-forged-token 8 ListGoalsRequest 'parent: "patients/p1" page_token: "CgQxMjM0EhBhYmNkZWZnaGlqa2xtbm9w"'
# A string field with invalid UTF-8 (FindInvalidUtf8Field names goal.notes[0].text).
printf '\x06\x0a\x0bpatients/p1\x12\x08\x52\x06\x0a\x04ab\xff\xfe' >"$out/create-goal-invalid-utf8-note"
echo "$(ls "$out" | wc -l) seeds in $out"
