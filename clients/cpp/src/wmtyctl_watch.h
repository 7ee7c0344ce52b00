// wmtyctl watch: prints the change feed (wmty.v1.ChangeFeedService) as it
// comes, one line per change, until interrupted.
//
//   wmtyctl [global flags] watch [--parent=patients/p1] [--kinds=GOAL,PREFERENCE]
//       [--start_after=N] [--resources] [--heartbeats] [--heartbeat_interval=10s] [--max_events=N]
//
// A line holds no patient text: sequence, kind, resource name, version,
// operation and time. --resources adds the resource each change wrote (patient
// data). The watch resumes by itself across broken streams and server restarts
// (wmty::client::Watcher), saying so on stderr. SIGINT or SIGTERM ends it
// cleanly (exit 0) with the sequence to resume from on stderr.
#ifndef WMTY_CLIENTS_CPP_SRC_WMTYCTL_WATCH_H_
#define WMTY_CLIENTS_CPP_SRC_WMTYCTL_WATCH_H_

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <google/protobuf/message.h>

#include "wmtyctl_admin.h"

namespace wmty::ctl {

// How a resource is printed (wmtyctl's text rendering of a message).
using RenderFn = std::function<std::string(const google::protobuf::Message&)>;

// Runs "wmtyctl watch <args...>"; returns the exit status (0 ended by a
// signal or --max_events, 1 the watch failed, 2 usage error). Installs
// handlers for SIGINT and SIGTERM (they end the watch).
int WatchMain(GlobalFlags globals, const std::vector<std::string>& args, const RenderFn& render);

// The watch line of `wmtyctl help`.
void PrintWatchCommandLine(FILE* to);

}  // namespace wmty::ctl

#endif  // WMTY_CLIENTS_CPP_SRC_WMTYCTL_WATCH_H_
