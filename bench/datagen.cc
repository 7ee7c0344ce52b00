// wmty_datagen: the data generator of bench/run.sh (issue 7).
//
//   wmty_datagen --data_dir=/tmp/wmty-perf-db --patients=100000 [--bench_patients=1000]
//
// Builds a database of synthetic patients through the domain core
// (PatientRecords: the same validation, ids, versions, key layout and group
// commit as every API call). wmty has no import endpoint an operator could
// call, so this is the bulk path: in-process, the store's WAL unsynced during
// the load (like wmty_bench), flushed and synced when the store closes, and
// checked with Store::VerifyIntegrity afterwards (up to --verify_max_records).
//
// Patients (deterministic from --seed; one RNG per patient):
//   p<k>      k < --patients: a realistic mix, ~10 records (stored versions)
//             each on average: 1-5 what-matters statements (15% revised once),
//             0-6 goals each with 0-3 later versions (status changes, a note,
//             a link to what matters), 0-5 preferences of several kinds,
//             goal scores for 20% of goals, ranked priorities for 70% of
//             patients with 2+ statements.
//   bench-<k> k < --bench_patients: exactly 50 current records — 15
//             what-matters, 20 goals (each with a second version), 15
//             preferences — and priorities: GetPatientSummary returns 50
//             entries and Goal?patient=bench-<k> 20 matches. Spread among the
//             others (one every patients/bench_patients).
// "Records" are stored versions (change-log entries: a create or an update),
// the unit the store writes; --patients=100000 gives ~1M records.
//
// Writes <manifest_dir> (default <data_dir>.manifest):
//   bench_patients.txt  bench-<k>, one a line
//   bench_goal_ids.txt  the goal ids of the bench patients
//   bench_goal_names.txt  their resource names (patients/../goals/..)
//   manifest.txt        key=value: patients, bench_patients, seed, records,
//                       load_seconds, records_per_second, ...
// A data_dir whose manifest matches (patients, bench_patients, seed) is
// reused, not loaded again ("reused=1" in the output).
//
// Progress bar on stderr (redrawn in place on a terminal, a line every 10%
// otherwise). Last line on stdout:
//   DATAGEN records=N patients=N seconds=S records_per_second=R reused=0|1
// Exit: 0 ok, 1 a failed write or check.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "domain/patient_records.h"
#include "storage/store.h"

ABSL_FLAG(std::string, data_dir, "/tmp/wmty-perf-db", "Database directory");
ABSL_FLAG(std::string, manifest_dir, "", "Where the id lists and manifest go (default <data_dir>.manifest)");
ABSL_FLAG(int64_t, patients, 100000, "Patients with a realistic mix (~10 records each)");
ABSL_FLAG(int64_t, bench_patients, 1000, "Patients with exactly 50 current records (the summary/search targets)");
ABSL_FLAG(uint64_t, seed, 7, "Seed of the generator");
ABSL_FLAG(bool, fresh, false, "Delete data_dir (and the manifest) first");
ABSL_FLAG(int, max_in_flight, 4096, "Writes handed to the store and not yet committed");
ABSL_FLAG(int64_t, verify_max_records, 2000000, "Run Store::VerifyIntegrity when the load wrote at most this many");
ABSL_FLAG(int, block_cache_mb, 1024,
          "RocksDB block cache during the load and the check after it (the check reads the change log and "
          "the id index in random order: with 64 MB it took 5 minutes at 1M records)");
ABSL_FLAG(int, memtable_mb, 256, "RocksDB memtable budget during the load");

namespace {

using namespace wmty;

// ---------------------------------------------------------------- text

constexpr const char* kStatements[] = {
    "Being at home with my dog and my grandchildren on Sundays",
    "Getting back to my garden before the tomatoes need planting",
    "Not being a burden to my daughter",
    "Walking to church on my own again",
    "Being well enough to travel to my brother's 80th birthday",
    "Keeping my mind clear enough to do the crossword",
    "Staying out of hospital over Christmas",
    "Being able to cook for my family",
    "Going back to work part-time at the library",
    "Having less pain at night so I can sleep",
    "Being there when my granddaughter graduates",
    "Feeling safe in my own flat",
    "Playing the piano at the community centre",
    "Knowing what to expect from the treatment",
    "Being treated as a person, not as a diagnosis",
};
constexpr const char* kPrompts[] = {"What matters most to you today?", "What would make a good day for you?",
                                    "What are you most worried about?", ""};
constexpr const char* kGoals[] = {
    "Walk to the end of the garden without resting",
    "Climb the stairs to the bedroom without help",
    "Sleep through the night at least four nights a week",
    "Cook a simple meal twice a week",
    "Attend the family wedding in June",
    "Reduce breathlessness when getting dressed",
    "Take all medicines at the right time using the pill organiser",
    "Go to the day centre on Tuesdays",
    "Lose 3 kg before the knee operation",
    "Walk the dog around the block every morning",
    "Manage pain well enough to read for an hour",
};
constexpr const char* kNotes[] = {"Managed it twice this week with a rest halfway.",
                                  "Daughter reports steady progress.", "Set back by a chest infection.",
                                  "Physiotherapy exercises are helping."};
constexpr const char* kPreferences[] = {
    "Please call me Bea and knock before entering",
    "I would rather have my daughter with me when we talk about results",
    "No visits before 10 in the morning",
    "I do not want to be resuscitated; please talk to my son first",
    "I like the window open at night",
    "Please explain things slowly and write them down for me",
    "I prefer a female nurse for personal care",
    "Music helps me relax during procedures",
};
constexpr v1::PreferenceKind kTextKinds[] = {
    v1::CARE_EXPERIENCE_PREFERENCE, v1::TREATMENT_INTERVENTION, v1::NAME_TO_USE, v1::LIKES_AND_JOYS,
    v1::DISLIKES_AND_FEARS,         v1::OTHER_PREFERENCE};
constexpr const char* kLanguages[] = {"en", "es", "pl", "vi", "ar", "zh"};
constexpr const char* kRecorders[] = {"rn-17", "rn-42", "md-3", "sw-8", "ot-5", "pt-11"};

template <class T, size_t N>
const T& Pick(std::mt19937_64& rng, const T (&items)[N]) {
  return items[rng() % N];
}

// A value from a small discrete distribution: weights[i] is the weight of values[i].
int Draw(std::mt19937_64& rng, std::initializer_list<std::pair<int, int>> value_weight) {
  int total = 0;
  for (auto [v, w] : value_weight) total += w;
  int r = static_cast<int>(rng() % static_cast<uint64_t>(total));
  for (auto [v, w] : value_weight) {
    if (r < w) return v;
    r -= w;
  }
  return value_weight.begin()->first;
}

v1::Provenance MakeProvenance(std::mt19937_64& rng) {
  v1::Provenance p;
  p.mutable_recorded_by()->set_practitioner_id(Pick(rng, kRecorders));
  p.mutable_recorded_by()->set_role("RN");
  if (rng() % 5 == 0) {
    p.mutable_said_by()->set_kind(v1::Speaker::RELATED_PERSON);
    p.mutable_said_by()->set_name("Ann Smith");
    p.mutable_said_by()->set_relationship("daughter");
  } else {
    p.mutable_said_by()->set_kind(v1::Speaker::PATIENT);
  }
  p.set_channel(rng() % 3 == 0 ? v1::EHR_PLUGIN : v1::BEDSIDE);
  return p;
}

v1::WhatMatters MakeWhatMatters(std::mt19937_64& rng) {
  v1::WhatMatters w;
  w.set_statement(Pick(rng, kStatements));
  w.set_prompt(Pick(rng, kPrompts));
  const int domain = static_cast<int>(rng() % 10);
  w.add_life_domains(static_cast<v1::LifeDomain>(1 + domain));
  if (rng() % 3 == 0) w.add_life_domains(static_cast<v1::LifeDomain>(1 + (domain + 1 + rng() % 9) % 10));
  if (rng() % 4 == 0) w.add_dignity_elements(static_cast<v1::DignityElement>(1 + rng() % 10));
  *w.mutable_provenance() = MakeProvenance(rng);
  return w;
}

v1::Goal MakeGoal(std::mt19937_64& rng) {
  v1::Goal g;
  g.set_description(Pick(rng, kGoals));
  g.set_lifecycle_status(rng() % 4 == 0 ? v1::PROPOSED : v1::GOAL_ACTIVE);
  g.set_achievement_status(v1::IN_PROGRESS);
  g.set_priority(static_cast<v1::GoalPriority>(1 + rng() % 3));
  g.add_categories(rng() % 2 ? v1::PERSONAL_HEALTH_GOAL : v1::PHYSIOTHERAPY);
  g.set_start_date(absl::StrFormat("2026-%02d-%02d", 1 + rng() % 12, 1 + rng() % 28));
  g.set_target_date(absl::StrFormat("2027-%02d", 1 + rng() % 12));
  *g.mutable_provenance() = MakeProvenance(rng);
  return g;
}

v1::Preference MakePreference(std::mt19937_64& rng) {
  v1::Preference p;
  const int which = static_cast<int>(rng() % 8);
  if (which == 0) {
    p.set_kind(v1::LANGUAGE);
    p.mutable_language()->set_language(Pick(rng, kLanguages));
    p.mutable_language()->set_interpreter_needed(rng() % 2 == 0);
  } else if (which == 1) {
    p.set_kind(v1::COMMUNICATION_CHANNELS);
    p.mutable_channel_ranking()->add_channels(v1::PHONE_CALL);
    p.mutable_channel_ranking()->add_channels(rng() % 2 ? v1::SMS : v1::PATIENT_PORTAL);
  } else {
    p.set_kind(Pick(rng, kTextKinds));
    p.set_value_text(Pick(rng, kPreferences));
  }
  *p.mutable_provenance() = MakeProvenance(rng);
  return p;
}

// ---------------------------------------------------------------- patients

// What one patient gets; drawn from its own RNG so a profile can be computed
// again without loading (for the expected total).
struct Profile {
  int what_matters = 0;
  int revised_what_matters = 0;  // of them, revised once
  int goals = 0;
  std::vector<int> goal_updates;  // later versions of each goal
  int preferences = 0;
  int scored_goals = 0;
  bool priorities = false;
  bool bench = false;

  int64_t Records() const {
    int64_t n = what_matters + revised_what_matters + goals + preferences + scored_goals + (priorities ? 1 : 0);
    for (int u : goal_updates) n += u;
    return n;
  }
};

uint64_t PatientSeed(uint64_t seed, int64_t index, bool bench) {
  return seed * 0x9E3779B97F4A7C15ull ^ (static_cast<uint64_t>(index) << 1 | (bench ? 1 : 0));
}

Profile MakeProfile(std::mt19937_64& rng, bool bench) {
  Profile p;
  p.bench = bench;
  if (bench) {
    p.what_matters = 15;
    p.goals = 20;
    p.goal_updates.assign(20, 1);
    p.preferences = 15;
    p.priorities = true;
    return p;
  }
  p.what_matters = Draw(rng, {{1, 35}, {2, 30}, {3, 20}, {4, 10}, {5, 5}});
  for (int i = 0; i < p.what_matters; ++i) p.revised_what_matters += (rng() % 100 < 15) ? 1 : 0;
  p.goals = Draw(rng, {{0, 15}, {1, 25}, {2, 25}, {3, 20}, {4, 10}, {6, 5}});
  for (int i = 0; i < p.goals; ++i) p.goal_updates.push_back(Draw(rng, {{0, 30}, {1, 35}, {2, 25}, {3, 10}}));
  for (int i = 0; i < p.goals; ++i) p.scored_goals += (rng() % 100 < 20) ? 1 : 0;
  p.preferences = Draw(rng, {{0, 20}, {1, 30}, {2, 25}, {3, 15}, {5, 10}});
  p.priorities = p.what_matters >= 2 && rng() % 100 < 70;
  return p;
}

// The load of one patient in flight. Stage 1 creates the what-matters
// entries, goals and preferences; once all of them are written, stage 2
// revises statements, writes the goals' later versions (one after another:
// each needs the etag of the one before), goal scores and priorities.
struct PatientLoad {
  std::string patient;
  std::string parent;
  Profile profile;
  std::mt19937_64 rng;
  std::mutex mu;
  int stage1_left = 0;
  std::vector<v1::WhatMatters> what_matters;
  std::vector<v1::Goal> goals;
  int stage2_left = 0;
};

class Loader {
 public:
  Loader(domain::PatientRecords* core, int max_in_flight) : core_(core), max_in_flight_(max_in_flight) {}

  // Issues everything; returns once every write of every patient finished.
  void Run(int64_t patients, int64_t bench_patients, uint64_t seed, int64_t expected_records) {
    expected_ = expected_records;
    start_ = absl::Now();
    const int64_t stride = bench_patients > 0 ? std::max<int64_t>(1, patients / bench_patients) : 0;
    int64_t next_bench = 0;
    for (int64_t i = 0; i < patients || next_bench < bench_patients; ++i) {
      if (next_bench < bench_patients && (i >= patients || i % stride == 0)) {
        StartPatient(absl::StrCat("bench-", next_bench), true, PatientSeed(seed, next_bench, true));
        ++next_bench;
      }
      if (i < patients) StartPatient(absl::StrCat("p", i), false, PatientSeed(seed, i, false));
      RunFollowups();
      Progress(false);
    }
    // Drain: follow-ups keep coming until the last patient is complete.
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, std::chrono::milliseconds(200),
                     [&] { return !followups_.empty() || (patients_open_ == 0 && in_flight_ == 0); });
        if (followups_.empty() && patients_open_ == 0 && in_flight_ == 0) break;
        if (followups_.empty()) {
          lock.unlock();
          Progress(false);
          continue;
        }
        job = std::move(followups_.front());
        followups_.pop_front();
      }
      job();
      Progress(false);
    }
    Progress(true);
  }

  int64_t written() const { return written_.load(); }
  int64_t failures() const { return failures_.load(); }
  double seconds() const { return absl::ToDoubleSeconds(absl::Now() - start_); }
  const std::vector<std::string>& bench_goal_names() const { return bench_goal_names_; }
  const std::vector<std::string>& bench_patients() const { return bench_patient_ids_; }

 private:
  // Takes a slot, waiting for one (slots are given back by the commit thread's callbacks).
  void Acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return in_flight_ < max_in_flight_; });
    ++in_flight_;
  }
  // Runs the follow-ups queued so far (stage 2 of finished patients), so that
  // few patients are open at a time.
  void RunFollowups() {
    for (;;) {
      std::function<void()> job;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (followups_.empty()) return;
        job = std::move(followups_.front());
        followups_.pop_front();
      }
      job();
    }
  }
  void Release(bool ok, const absl::Status& status) {
    if (ok) {
      written_.fetch_add(1, std::memory_order_relaxed);
    } else if (failures_.fetch_add(1) < 5) {
      std::fprintf(stderr, "\nwrite failed: %s\n", status.ToString().c_str());
    }
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight_;
    cv_.notify_all();
  }
  // Runs `job` on the loading thread (never on the store's commit thread).
  void Later(std::function<void()> job) {
    std::lock_guard<std::mutex> lock(mu_);
    followups_.push_back(std::move(job));
    cv_.notify_all();
  }
  void PatientDone(const std::shared_ptr<PatientLoad>& p) {
    if (p->profile.bench) {
      std::lock_guard<std::mutex> lock(mu_);
      bench_patient_ids_.push_back(p->patient);
      for (const auto& g : p->goals) bench_goal_names_.push_back(g.name());
    }
    std::lock_guard<std::mutex> lock(mu_);
    --patients_open_;
    cv_.notify_all();
  }

  void StartPatient(std::string patient, bool bench, uint64_t seed) {
    auto p = std::make_shared<PatientLoad>();
    p->patient = std::move(patient);
    p->parent = absl::StrCat("patients/", p->patient);
    p->rng.seed(seed);
    p->profile = MakeProfile(p->rng, bench);
    p->stage1_left = p->profile.what_matters + p->profile.goals + p->profile.preferences;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++patients_open_;
    }
    if (p->stage1_left == 0) return PatientDone(p);
    // All requests are built before the first is issued: p->rng is only used on this thread.
    std::vector<v1::CreateWhatMattersRequest> wm(p->profile.what_matters);
    std::vector<v1::CreateGoalRequest> goals(p->profile.goals);
    std::vector<v1::CreatePreferenceRequest> prefs(p->profile.preferences);
    for (auto& r : wm) {
      r.set_parent(p->parent);
      *r.mutable_what_matters() = MakeWhatMatters(p->rng);
    }
    for (auto& r : goals) {
      r.set_parent(p->parent);
      *r.mutable_goal() = MakeGoal(p->rng);
    }
    for (auto& r : prefs) {
      r.set_parent(p->parent);
      *r.mutable_preference() = MakePreference(p->rng);
    }
    for (auto& r : wm) {
      Acquire();
      core_->CreateWhatMatters(r, ctx_, [this, p](absl::StatusOr<v1::WhatMatters> w) {
        Release(w.ok(), w.status());
        std::lock_guard<std::mutex> lock(p->mu);
        if (w.ok()) p->what_matters.push_back(*std::move(w));
        Stage1Done(p);
      });
    }
    for (auto& r : goals) {
      Acquire();
      core_->CreateGoal(r, ctx_, [this, p](absl::StatusOr<v1::Goal> g) {
        Release(g.ok(), g.status());
        std::lock_guard<std::mutex> lock(p->mu);
        if (g.ok()) p->goals.push_back(*std::move(g));
        Stage1Done(p);
      });
    }
    for (auto& r : prefs) {
      Acquire();
      core_->CreatePreference(r, ctx_, [this, p](absl::StatusOr<v1::Preference> pr) {
        Release(pr.ok(), pr.status());
        std::lock_guard<std::mutex> lock(p->mu);
        Stage1Done(p);
      });
    }
  }

  // Called with p->mu held.
  void Stage1Done(const std::shared_ptr<PatientLoad>& p) {
    if (--p->stage1_left > 0) return;
    Later([this, p] { StartStage2(p); });
  }

  void Stage2Step(const std::shared_ptr<PatientLoad>& p) {
    bool done;
    {
      std::lock_guard<std::mutex> lock(p->mu);
      done = --p->stage2_left == 0;
    }
    if (done) PatientDone(p);
  }

  void StartStage2(const std::shared_ptr<PatientLoad>& p) {
    // Names sort in creation order (ULIDs): make stage 2 independent of commit order.
    auto by_name = [](const auto& a, const auto& b) { return a.name() < b.name(); };
    std::sort(p->what_matters.begin(), p->what_matters.end(), by_name);
    std::sort(p->goals.begin(), p->goals.end(), by_name);
    const Profile& pr = p->profile;
    const int revised = std::min<int>(pr.revised_what_matters, static_cast<int>(p->what_matters.size()));
    const int goals = static_cast<int>(p->goals.size());
    const int scored = std::min(pr.scored_goals, goals);
    int chains = 0;
    for (int i = 0; i < goals && i < static_cast<int>(pr.goal_updates.size()); ++i) chains += pr.goal_updates[i] > 0;
    const bool priorities = pr.priorities && !p->what_matters.empty();
    p->stage2_left = revised + chains + scored + (priorities ? 1 : 0);
    if (p->stage2_left == 0) return PatientDone(p);

    for (int i = 0; i < revised; ++i) {
      v1::UpdateWhatMattersRequest req;
      *req.mutable_what_matters() = p->what_matters[i];
      req.mutable_what_matters()->set_statement(
          absl::StrCat(p->what_matters[i].statement(), ", and seeing my friends from the choir"));
      req.mutable_update_mask()->add_paths("statement");
      Acquire();
      core_->UpdateWhatMatters(req, ctx_, [this, p](absl::StatusOr<v1::WhatMatters> w) {
        Release(w.ok(), w.status());
        Stage2Step(p);
      });
    }
    for (int i = 0; i < goals && i < static_cast<int>(pr.goal_updates.size()); ++i) {
      if (pr.goal_updates[i] > 0) GoalUpdate(p, i, 1);
    }
    for (int i = 0; i < scored; ++i) {
      v1::CreateGoalScoreRequest req;
      req.set_parent(p->parent);
      auto* s = req.mutable_goal_score();
      s->set_goal(p->goals[i].name());
      s->set_score_type(v1::INITIAL);
      s->set_score(static_cast<int>(p->rng() % 5) - 2);  // goal-attainment scaling
      s->mutable_effective_time()->set_seconds(1760000000 + static_cast<int64_t>(p->rng() % 10000000));
      *s->mutable_provenance() = MakeProvenance(p->rng);
      Acquire();
      core_->CreateGoalScore(req, ctx_, [this, p](absl::StatusOr<v1::GoalScore> r) {
        Release(r.ok(), r.status());
        Stage2Step(p);
      });
    }
    if (priorities) {
      v1::UpdatePrioritiesRequest req;
      req.mutable_priorities()->set_name(absl::StrCat(p->parent, "/priorities"));
      const int n = std::min<int>(pr.bench ? 10 : 3, static_cast<int>(p->what_matters.size()));
      for (int i = n - 1; i >= 0; --i) req.mutable_priorities()->add_items(p->what_matters[i].name());
      *req.mutable_priorities()->mutable_provenance() = MakeProvenance(p->rng);
      Acquire();
      core_->UpdatePriorities(req, ctx_, [this, p](absl::StatusOr<v1::Priorities> r) {
        Release(r.ok(), r.status());
        Stage2Step(p);
      });
    }
  }

  // Version `step` + 1 of goal `i`: the status moves on, a note is added, the
  // first time it is linked to what matters. Runs on the loading thread.
  void GoalUpdate(const std::shared_ptr<PatientLoad>& p, int i, int step) {
    v1::UpdateGoalRequest req;
    v1::Goal* g = req.mutable_goal();
    *g = p->goals[i];
    auto* mask = req.mutable_update_mask();
    constexpr v1::GoalAchievementStatus kProgress[] = {v1::IMPROVING, v1::NO_CHANGE, v1::ACHIEVED};
    g->set_lifecycle_status(v1::GOAL_ACTIVE);
    g->set_achievement_status(kProgress[(step - 1) % 3]);
    mask->add_paths("lifecycle_status");
    mask->add_paths("achievement_status");
    auto* note = g->add_notes();
    note->set_text(Pick(p->rng, kNotes));
    note->set_author(Pick(p->rng, kRecorders));
    mask->add_paths("notes");
    if (step == 1 && !p->what_matters.empty()) {
      g->add_what_matters(p->what_matters[p->rng() % p->what_matters.size()].name());
      mask->add_paths("what_matters");
    }
    Acquire();
    core_->UpdateGoal(req, ctx_, [this, p, i, step](absl::StatusOr<v1::Goal> r) {
      const bool ok = r.ok();  // read before the value is moved out of r
      Release(ok, r.status());
      if (ok) p->goals[i] = *std::move(r);  // only this chain touches goals[i] now
      if (ok && step < p->profile.goal_updates[i]) {
        Later([this, p, i, step] { GoalUpdate(p, i, step + 1); });
      } else {
        Stage2Step(p);
      }
    });
  }

  void Progress(bool final) {
    const absl::Time now = absl::Now();
    if (!final && now - last_progress_ < absl::Milliseconds(250)) return;
    last_progress_ = now;
    const int64_t done = written_.load();
    const double secs = std::max(1e-3, absl::ToDoubleSeconds(now - start_));
    const double rate = done / secs;
    const double frac = expected_ > 0 ? std::min(1.0, static_cast<double>(done) / expected_) : 1.0;
    if (tty_) {
      constexpr int kWidth = 30;
      const int filled = static_cast<int>(frac * kWidth);
      const double eta = rate > 0 ? (expected_ - done) / rate : 0;
      std::fprintf(stderr, "\r[%s%s] %3.0f%% %lld/%lld records, %.0f/s, ETA %.0f s   ",
                   std::string(filled, '#').c_str(), std::string(kWidth - filled, ' ').c_str(), 100 * frac,
                   static_cast<long long>(done), static_cast<long long>(expected_), rate, std::max(0.0, eta));
      if (final) std::fprintf(stderr, "\n");
    } else {
      const int decile = static_cast<int>(frac * 10);
      if (decile > last_decile_ || final) {
        last_decile_ = decile;
        std::fprintf(stderr, "datagen: %3.0f%% %lld/%lld records, %.0f/s\n", 100 * frac, static_cast<long long>(done),
                     static_cast<long long>(expected_), rate);
      }
    }
  }

  domain::PatientRecords* const core_;
  const int max_in_flight_;
  const domain::CallContext ctx_;
  std::mutex mu_;
  std::condition_variable cv_;
  int in_flight_ = 0;
  int64_t patients_open_ = 0;
  std::deque<std::function<void()>> followups_;
  std::atomic<int64_t> written_{0};
  std::atomic<int64_t> failures_{0};
  std::vector<std::string> bench_goal_names_;
  std::vector<std::string> bench_patient_ids_;
  int64_t expected_ = 0;
  absl::Time start_;
  absl::Time last_progress_ = absl::InfinitePast();
  const bool tty_ = isatty(2) != 0;
  int last_decile_ = -1;
};

std::map<std::string, std::string> ReadManifest(const std::string& path) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    if (!kv.first.empty()) out[kv.first] = kv.second;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string dir = absl::GetFlag(FLAGS_data_dir);
  std::string manifest_dir = absl::GetFlag(FLAGS_manifest_dir);
  if (manifest_dir.empty()) manifest_dir = dir + ".manifest";
  const int64_t patients = absl::GetFlag(FLAGS_patients);
  const int64_t bench_patients = absl::GetFlag(FLAGS_bench_patients);
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  if (absl::GetFlag(FLAGS_fresh)) {
    std::filesystem::remove_all(dir);
    std::filesystem::remove_all(manifest_dir);
  }

  const std::string manifest_path = manifest_dir + "/manifest.txt";
  if (std::filesystem::exists(dir)) {
    auto m = ReadManifest(manifest_path);
    if (m["patients"] == absl::StrCat(patients) && m["bench_patients"] == absl::StrCat(bench_patients) &&
        m["seed"] == absl::StrCat(seed) && m["complete"] == "1") {
      std::fprintf(stderr, "datagen: reusing %s (%s records)\n", dir.c_str(), m["records"].c_str());
      std::printf("DATAGEN records=%s patients=%lld seconds=%s records_per_second=%s reused=1\n", m["records"].c_str(),
                  static_cast<long long>(patients) + bench_patients, m["load_seconds"].c_str(),
                  m["records_per_second"].c_str());
      return 0;
    }
    if (!std::filesystem::is_empty(dir)) {
      std::fprintf(stderr, "datagen: %s holds another or a partial load; use --fresh\n", dir.c_str());
      return 1;
    }
  }

  // The expected total, for the progress bar (profiles are cheap to draw).
  int64_t expected = 0;
  for (int64_t i = 0; i < patients; ++i) {
    std::mt19937_64 rng(PatientSeed(seed, i, false));
    expected += MakeProfile(rng, false).Records();
  }
  {
    std::mt19937_64 rng(PatientSeed(seed, 0, true));
    expected += bench_patients * MakeProfile(rng, true).Records();
  }
  std::fprintf(stderr, "datagen: %lld patients + %lld bench patients, ~%lld records into %s\n",
               static_cast<long long>(patients), static_cast<long long>(bench_patients),
               static_cast<long long>(expected), dir.c_str());

  storage::StoreOptions options;
  options.path = dir;
  options.sync_writes = false;  // bulk load: synced at close, verified below
  options.max_batch_size = 2048;
  options.max_queued_changes = 0;
  options.block_cache_bytes = size_t(absl::GetFlag(FLAGS_block_cache_mb)) << 20;
  options.memtable_budget_bytes = size_t(absl::GetFlag(FLAGS_memtable_mb)) << 20;
  auto store = storage::Store::Open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "datagen: %s\n", store.status().ToString().c_str());
    return 1;
  }
  auto core = domain::PatientRecords::Create(store->get());
  if (!core.ok()) {
    std::fprintf(stderr, "datagen: %s\n", core.status().ToString().c_str());
    return 1;
  }
  Loader loader(core->get(), absl::GetFlag(FLAGS_max_in_flight));
  loader.Run(patients, bench_patients, seed, expected);
  const double load_seconds = loader.seconds();
  const int64_t records = loader.written();
  if (loader.failures() > 0) {
    std::fprintf(stderr, "datagen: %lld writes failed\n", static_cast<long long>(loader.failures()));
    return 1;
  }
  if (records != static_cast<int64_t>((*store)->LastSequence())) {
    std::fprintf(stderr, "datagen: wrote %lld records but the change log holds %llu\n", static_cast<long long>(records),
                 static_cast<unsigned long long>((*store)->LastSequence()));
    return 1;
  }
  const absl::Time close_start = absl::Now();
  bool verified = false;
  if (records <= absl::GetFlag(FLAGS_verify_max_records)) {
    if (auto s = (*store)->VerifyIntegrity(); !s.ok()) {
      std::fprintf(stderr, "datagen: integrity check failed: %s\n", s.ToString().c_str());
      return 1;
    }
    verified = true;
  }
  (*store)->Close();  // flushes and syncs the WAL
  const double close_seconds = absl::ToDoubleSeconds(absl::Now() - close_start);
  const double rate = records / load_seconds;
  std::fprintf(stderr, "datagen: %lld records in %.1f s (%.0f records/s)%s; close%s %.1f s\n",
               static_cast<long long>(records), load_seconds, rate, verified ? "" : " (not verified: too many)",
               verified ? " + verify" : "", close_seconds);

  std::filesystem::create_directories(manifest_dir);
  {
    std::ofstream out(manifest_dir + "/bench_patients.txt", std::ios::trunc);
    for (const auto& p : loader.bench_patients()) out << p << "\n";
  }
  {
    std::ofstream names(manifest_dir + "/bench_goal_names.txt", std::ios::trunc);
    std::ofstream ids(manifest_dir + "/bench_goal_ids.txt", std::ios::trunc);
    for (const auto& n : loader.bench_goal_names()) {
      names << n << "\n";
      ids << n.substr(n.rfind('/') + 1) << "\n";
    }
  }
  {
    std::ofstream out(manifest_path + ".tmp", std::ios::trunc);
    out << "patients=" << patients << "\nbench_patients=" << bench_patients << "\nseed=" << seed
        << "\nrecords=" << records << "\nload_seconds=" << absl::StrFormat("%.1f", load_seconds)
        << "\nrecords_per_second=" << absl::StrFormat("%.0f", rate) << "\nverified=" << (verified ? 1 : 0)
        << "\nclose_seconds=" << absl::StrFormat("%.1f", close_seconds) << "\ncomplete=1\n";
  }
  std::filesystem::rename(manifest_path + ".tmp", manifest_path);
  std::printf("DATAGEN records=%lld patients=%lld seconds=%.1f records_per_second=%.0f reused=0\n",
              static_cast<long long>(records), static_cast<long long>(patients) + bench_patients, load_seconds, rate);
  return 0;
}
