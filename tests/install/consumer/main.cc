// Records a goal, reads the patient summary and watches the change feed
// through the installed client.
// Usage: consumer host:port
#include <iostream>

#include "common/status.h"
#include "wmty/client/client.h"
#include "wmty/client/watch.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: consumer host:port\n";
    return 2;
  }
  wmty::client::ClientOptions options;
  options.target = argv[1];
  auto client = wmty::client::Client::Connect(options);

  wmty::v1::CreateGoalRequest create;
  create.set_parent("patients/install-check");
  auto* goal = create.mutable_goal();
  goal->set_description("Garden again by spring");
  goal->set_lifecycle_status(wmty::v1::GOAL_ACTIVE);
  goal->mutable_provenance()->mutable_recorded_by()->set_practitioner_id("rn-1");
  goal->mutable_provenance()->mutable_said_by()->set_kind(wmty::v1::Speaker::PATIENT);
  auto created = client->CreateGoal(create);
  if (!created.ok()) {
    std::cerr << "create failed: " << created.status() << "\n";
    return 1;
  }
  // A bad request comes back with field violations the caller can read.
  wmty::v1::CreateGoalRequest bad = create;
  bad.mutable_goal()->set_description("   ");
  auto refused = client->CreateGoal(bad);
  auto violations = wmty::GetFieldViolations(refused.status());
  if (refused.ok() || violations.field_violations_size() == 0) {
    std::cerr << "expected a field violation\n";
    return 1;
  }
  wmty::v1::GetPatientSummaryRequest summary_req;
  summary_req.set_parent("patients/install-check");
  auto summary = client->GetPatientSummary(summary_req);
  if (!summary.ok()) {
    std::cerr << "summary failed: " << summary.status() << "\n";
    return 1;
  }
  // The change feed from the start of the log: the goal's creation.
  wmty::client::WatchOptions watch_options;
  watch_options.start_after = 0;
  watch_options.parent = "patients/install-check";
  auto watch = client->WatchChanges(watch_options);
  std::string watched;
  while (watched.empty()) {
    auto m = watch->Next(absl::Seconds(30));
    if (!m.ok()) {
      std::cerr << "watch failed: " << m.status() << "\n";
      return 1;
    }
    if (m->has_change()) watched = m->change().name();
  }
  std::cout << "goals=" << summary->goals_size() << " first=" << summary->goals(0).name()
            << " violation=" << violations.field_violations(0).field() << " watched=" << watched << "\n";
  return 0;
}
