// What an EHR integration does with wmty, on the C++ client library
// (wmty::client::Client): the part of the example to copy into a plugin.
//
//   chart open         FetchSummary with a deadline, then RenderCard; on a
//                      transient failure RenderDegradedCard (never block the chart)
//   record preference  BuildPreferenceRequest + RecordPreference (idempotent
//                      with its request_id; provenance says who said it)
//   follow changes     Follow: watches the change feed (client::Watcher) and
//                      prints the card again when a change alters it (no polling)
//
// No flags and no process exits here: main.cc turns the command line into
// these calls. Everything the card prints is patient data (PHI): it goes to the
// `out` stream the host gives; error text never includes patient words.
//
// Thread safety: the functions are safe to call concurrently with different
// output streams (a Client is thread-safe).
#ifndef WMTY_CLIENTS_EHR_PLUGIN_EXAMPLE_EHR_PLUGIN_H_
#define WMTY_CLIENTS_EHR_PLUGIN_EXAMPLE_EHR_PLUGIN_H_

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "wmty/client/client.h"
#include "wmty/v1/service.pb.h"

namespace wmty::ehr_example {

// Exit codes of the example, i.e. what the host EHR learns from it.
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 1;        // bad command line (Abseil's flag parser also exits 1)
inline constexpr int kExitRefused = 2;      // the server refused the call: bad input, no access, no token
inline constexpr int kExitUnavailable = 3;  // no answer in time / overloaded / unreachable: degraded

// True for failures that say nothing about the request itself and may clear up
// by themselves: DEADLINE_EXCEEDED, UNAVAILABLE, RESOURCE_EXHAUSTED, CANCELLED.
// A chart open shows the degraded card for these; other codes are bugs or
// configuration problems (INVALID_ARGUMENT, UNAUTHENTICATED, PERMISSION_DENIED).
bool IsTransient(const absl::Status& status);

// The error as lines for a log or stderr: code and message, each field
// violation of an INVALID_ARGUMENT, and the server's retry delay if it sent one
// (RESOURCE_EXHAUSTED carries a google.rpc.RetryInfo). Holds no patient text.
std::string DescribeError(const absl::Status& status);

// ---------------------------------------------------------------- chart open

// patients/{patient}'s summary, or an error once `deadline` has passed. The
// client library retries UNAVAILABLE with backoff inside the deadline; the
// deadline is absolute so that it can cover everything the chart open does.
absl::StatusOr<v1::PatientSummary> FetchSummary(client::Client& client, const std::string& patient,
                                                absl::Time deadline);

// The text card: what matters, goals and preferences in the patient's priority
// order (#n marks the rank they gave), each with who said it and when and who
// recorded it. Times are printed in UTC. `as_of` goes in the header.
std::string RenderCard(const std::string& patient, const v1::PatientSummary& summary, absl::Time as_of);

// The card shown instead when the summary could not be had in time.
std::string RenderDegradedCard(const std::string& patient, const absl::Status& status);

// ---------------------------------------------------------------- recording

struct PreferenceInput {
  std::string patient;
  v1::PreferenceKind kind = v1::PREFERENCE_KIND_UNSPECIFIED;
  std::string text;  // the preference in the speaker's own words
  // Who is signed in to the EHR and typed it, when the plugin calls with a
  // token of its own (a system token): the write is then recorded by the
  // plugin on behalf of this practitioner. Empty: the token's user alone
  // (wmty always records the token's user as the recorder).
  std::string on_behalf_of;
  // Who said it: empty name = the patient; otherwise a family member or other
  // related person, whose relationship is then required too.
  std::string said_by_name;
  std::string said_by_relationship;
  std::string encounter_id;  // optional
  // Idempotency key. Empty: BuildPreferenceRequest makes a fresh UUID, so that
  // the caller knows the id and can retry with it after an unclear outcome.
  std::string request_id;
};

// The CreatePreference request for `in`, with channel EHR_PLUGIN.
v1::CreatePreferenceRequest BuildPreferenceRequest(const PreferenceInput& in);

// Writes it. The write is durable when this returns OK. On a transient error
// the outcome is unknown: send the same request (same request_id) again to
// learn it; it is never written twice.
absl::StatusOr<v1::Preference> RecordPreference(client::Client& client, const v1::CreatePreferenceRequest& req,
                                                absl::Duration deadline);

// ---------------------------------------------------------------- following

// What a summary shows, as resource name -> version (the priorities included).
// Every change to a shown resource writes a new version, and a retracted one
// leaves the summary, so two summaries show the same thing exactly when their
// Versions() are equal.
std::map<std::string, int64_t> Versions(const v1::PatientSummary& summary);

struct FollowOptions {
  std::string patient;
  // Asked of the server while nothing changes (1 s to 5 min); after three
  // without one the connection is taken for dead and replaced.
  absl::Duration heartbeat = absl::Seconds(10);
  absl::Duration deadline = absl::Milliseconds(500);  // of each summary read
  int max_updates = 0;                                // stop after printing this many changed cards (0: no limit)
  absl::Duration exit_after = absl::ZeroDuration();   // stop after this long (0: no limit)
  bool log_events = false;  // also say on `err` what each change and heartbeat led to (no patient text)
};

// Follows the patient on the change feed (client::Watcher): prints the card
// from the summary the watch starts with, then, for each change the card does
// not show yet, reads the summary again and prints the card (after a line
// saying what changed) when Versions() differ. Nothing is read while nothing
// changes: no polling. The watcher reconnects by itself and resumes where it
// was (an outage is reported to `err` once, the card stays); if the server no
// longer holds the missed changes (OUT_OF_RANGE) the watch starts again from a
// fresh summary. A summary read that fails transiently is tried again with the
// next message (a heartbeat at the latest). Returns an exit code: kExitOk when
// a limit was reached, kExitRefused if the server refused the watch or a read
// (e.g. the token expired: a real plugin would get a new token and go on).
int Follow(client::Client& client, const FollowOptions& options, std::FILE* out, std::FILE* err);

}  // namespace wmty::ehr_example

#endif  // WMTY_CLIENTS_EHR_PLUGIN_EXAMPLE_EHR_PLUGIN_H_
