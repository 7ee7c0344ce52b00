// Runs the real wmtyctl binary (WMTYCTL_PATH, from wmty_test_support) for the
// tests that drive it end to end, and reads its --json output back into the
// wmty messages, so assertions are on parsed fields, not on text layout.
//
// Header-only: the targets that include it already link protobuf (through
// wmty_test_support's wmty_client).
#ifndef WMTY_TESTS_SUPPORT_WMTYCTL_H_
#define WMTY_TESTS_SUPPORT_WMTYCTL_H_

#include <string>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include "support/test_support.h"

namespace wmty::testing {

struct CtlResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// wmtyctl with `args` (no --target is added).
inline CtlResult RunCtl(std::vector<std::string> args) {
  args.insert(args.begin(), WMTYCTL_PATH);
  CtlResult r;
  r.exit_code = RunCommand(args, &r.output);
  return r;
}

// The response of a successful --json call as message M (test failures if
// the call failed or the output does not parse).
template <class M>
M ParseJson(const CtlResult& r) {
  M m;
  EXPECT_EQ(r.exit_code, 0) << r.output;
  auto s = google::protobuf::util::JsonStringToMessage(r.output, &m);
  EXPECT_TRUE(s.ok()) << s.ToString() << "\n" << r.output;
  return m;
}

}  // namespace wmty::testing

#endif  // WMTY_TESTS_SUPPORT_WMTYCTL_H_
