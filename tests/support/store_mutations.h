// Mutations for the tests that drive storage::Store directly (storage_tests,
// storage_fault_tests), without the domain core.
//
// Header-only: only the targets that link wmty_storage include it.
#ifndef WMTY_TESTS_SUPPORT_STORE_MUTATIONS_H_
#define WMTY_TESTS_SUPPORT_STORE_MUTATIONS_H_

#include <string>

#include "absl/status/status.h"
#include "storage/store.h"

namespace wmty::testing {

// A mutation that writes `payload` as the resource, whatever the current
// record (creating or updating it).
inline storage::Mutation Put(const std::string& patient, const std::string& id, const std::string& payload,
                             storage::Kind kind = storage::GOAL) {
  storage::Mutation m;
  m.kind = kind;
  m.patient_id = patient;
  m.id = id;
  m.op = storage::Change::UPDATE;
  m.apply = [payload](const storage::Record*, const storage::WriteStamp&, storage::Record* next) {
    next->set_resource(payload);
    return absl::OkStatus();
  };
  return m;
}

}  // namespace wmty::testing

#endif  // WMTY_TESTS_SUPPORT_STORE_MUTATIONS_H_
