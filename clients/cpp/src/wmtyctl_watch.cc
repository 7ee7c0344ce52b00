#include "wmtyctl_watch.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "wmty/client/client.h"
#include "wmty/client/watch.h"

namespace wmty::ctl {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

constexpr char kSummary[] = "Print changes as they are committed (the change feed), one line each.";
constexpr char kHelp[] =
    "wmtyctl watch: print changes as they are committed (wmty.v1.ChangeFeedService.WatchChanges).\n\n"
    "Usage: wmtyctl [global flags] watch [flags]\n\n"
    "Flags:\n"
    "  --parent=patients/ID      only this patient's changes (default: every patient the token may read)\n"
    "  --kinds=GOAL,PREFERENCE   only these kinds (what_matters, goal, preference, priorities, goal_score,\n"
    "                            patient; repeat the flag or separate by commas). Default: all readable\n"
    "  --start_after=N           the changes after sequence N (default: from now)\n"
    "  --resources               also print the resource each change wrote (patient data)\n"
    "  --heartbeats              also print the server's heartbeats (head sequence)\n"
    "  --heartbeat_interval=10s  how often the server sends one when idle (1s to 5m)\n"
    "  --max_events=N            exit after N changes (default: run until SIGINT or SIGTERM)\n\n"
    "One line per change, without patient text:\n"
    "  SEQUENCE KIND NAME VERSION OPERATION TIME\n"
    "  e.g. 42 GOAL patients/p1/goals/01J0000000000000000000000 2 UPDATE 2026-12-07T10:15:02.113Z\n"
    "With --json, one JSON object per line (wmty.v1.WatchChangesResponse). The watch reconnects and\n"
    "resumes by itself when the stream breaks (stderr says so); SIGINT or SIGTERM stops it (exit 0)\n"
    "and stderr tells the --start_after to resume with. Global flags may come before or after 'watch'.\n"
    "Exit status: 0 stopped, 1 the watch failed (e.g. OUT_OF_RANGE: --start_after is older than the\n"
    "server's change log), 2 usage error.\n";

struct WatchArgs {
  GlobalFlags globals;
  client::WatchOptions options;
  bool resources = false;
  bool heartbeats = false;
  int64_t max_events = 0;  // 0: no limit
};

absl::Status Usage(absl::string_view message) { return absl::InvalidArgumentError(message); }

// "goal", "GOAL_SCORE", "goal-score", "RESOURCE_KIND_GOAL" -> the kind.
bool ParseKind(absl::string_view text, v1::ResourceKind* kind) {
  std::string name = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(text));
  std::replace(name.begin(), name.end(), '-', '_');
  if (!absl::StartsWith(name, "RESOURCE_KIND_")) name = absl::StrCat("RESOURCE_KIND_", name);
  return v1::ResourceKind_Parse(name, kind) && *kind != v1::RESOURCE_KIND_UNSPECIFIED;
}

// One --name[=value] flag of watch (not a global one) into `out`.
absl::Status TakeWatchFlag(const std::string& name, const std::string& value, WatchArgs& out) {
  if (name == "resources" || name == "heartbeats") {
    (name == "resources" ? out.resources : out.heartbeats) = value == "true";
  } else if (name == "parent") {
    out.options.parent = value;
  } else if (name == "kinds") {
    for (absl::string_view part : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
      v1::ResourceKind kind;
      if (!ParseKind(part, &kind)) return Usage(absl::StrCat("--kinds: unknown kind '", part, "'"));
      out.options.kinds.push_back(kind);
    }
  } else if (name == "start_after") {
    uint64_t n = 0;
    if (!absl::SimpleAtoi(value, &n)) return Usage(absl::StrCat("--start_after: '", value, "' is not a sequence"));
    out.options.start_after = n;
  } else if (name == "heartbeat_interval") {
    absl::Duration d;
    if (!absl::ParseDuration(value, &d) || d <= absl::ZeroDuration()) {
      return Usage(absl::StrCat("--heartbeat_interval: '", value, "' is not a positive duration such as 10s"));
    }
    out.options.heartbeat_interval = d;
  } else if (name == "max_events") {
    if (!absl::SimpleAtoi(value, &out.max_events) || out.max_events <= 0) {
      return Usage(absl::StrCat("--max_events: '", value, "' is not a positive number"));
    }
  } else {
    return Usage(absl::StrCat("unknown flag --", name, " (run 'wmtyctl watch --help' for the flags)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<WatchArgs> Parse(GlobalFlags globals, const std::vector<std::string>& args) {
  WatchArgs out;
  out.globals = std::move(globals);
  absl::Status walked = WalkFlags(
      args, {"resources", "heartbeats"}, out.globals,
      [&](const std::string& name, const std::string& value) { return TakeWatchFlag(name, value, out); },
      [](const std::string& arg) { return Usage(absl::StrCat("unexpected argument '", arg, "'")); });
  if (!walked.ok()) return walked;
  out.options.include_resource = out.resources;
  return out;
}

std::string KindName(v1::ResourceKind kind) {
  return std::string(absl::StripPrefix(v1::ResourceKind_Name(kind), "RESOURCE_KIND_"));
}

// SEQUENCE KIND NAME VERSION OPERATION TIME: no patient text.
std::string EventLine(const v1::ChangeEvent& e) {
  return absl::StrCat(e.sequence(), " ", KindName(e.kind()), " ", e.name(), " ", e.version(), " ",
                      v1::ChangeEvent::Operation_Name(e.operation()), " ",
                      google::protobuf::util::TimeUtil::ToString(e.time()), "\n");
}

// The resource a change carries (with --resources), or nullptr.
const google::protobuf::Message* ResourceOf(const v1::ChangeEvent& e) {
  const google::protobuf::OneofDescriptor* oneof = v1::ChangeEvent::descriptor()->FindOneofByName("resource");
  const google::protobuf::FieldDescriptor* field = e.GetReflection()->GetOneofFieldDescriptor(e, oneof);
  return field == nullptr ? nullptr : &e.GetReflection()->GetMessage(e, field);
}

std::string JsonLine(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return out + "\n";
}

// Prints one message of the feed; true if it was a change.
bool Print(const WatchArgs& a, const v1::WatchChangesResponse& m, const RenderFn& render) {
  if (m.has_heartbeat() && !a.heartbeats) return false;
  if (a.globals.json) {
    std::fputs(JsonLine(m).c_str(), stdout);
  } else if (m.has_heartbeat()) {
    std::printf("heartbeat head %llu %s\n", static_cast<unsigned long long>(m.heartbeat().head_sequence()),
                google::protobuf::util::TimeUtil::ToString(m.heartbeat().time()).c_str());
  } else if (m.has_change()) {
    std::fputs(EventLine(m.change()).c_str(), stdout);
    if (const google::protobuf::Message* resource = ResourceOf(m.change()); resource != nullptr) {
      std::string text = render(*resource);
      absl::StrReplaceAll({{"\n", "\n  "}}, &text);
      std::printf("  %s", std::string(absl::StripSuffix(text, "  ")).c_str());
    }
  }
  std::fflush(stdout);  // whoever reads the pipe sees each change as it comes
  return m.has_change();
}

void PrintFailure(const absl::Status& status) {
  std::fprintf(stderr, "wmtyctl watch: %s: %s\n", absl::StatusCodeToString(status.code()).c_str(),
               std::string(status.message()).c_str());
  const google::rpc::BadRequest bad = GetFieldViolations(status);  // kept alive for the loop
  for (const auto& v : bad.field_violations()) {
    std::fprintf(stderr, "  %s: %s\n", v.field().c_str(), v.description().c_str());
  }
  if (const std::optional<uint64_t> oldest = client::OldestAvailableSequence(status); oldest.has_value()) {
    std::fprintf(stderr,
                 "  the server's change log starts at sequence %llu: earlier changes are gone. Re-read what you\n"
                 "  need, then watch without --start_after (from now), or with --start_after=%llu for what is left\n",
                 static_cast<unsigned long long>(*oldest), static_cast<unsigned long long>(*oldest - 1));
  }
}

// SIGINT and SIGTERM end the watch. A handler only writes the signal to a
// pipe (async-signal-safe), whichever thread the process-directed signal
// lands on (gRPC's included); a thread of its own reads it and cancels.
int signal_pipe[2] = {-1, -1};

extern "C" void OnStopSignal(int sig) {
  const char c = static_cast<char>(sig);
  (void)!write(signal_pipe[1], &c, 1);
}

class SignalWaiter {
 public:
  SignalWaiter() {
    if (pipe2(signal_pipe, O_CLOEXEC) != 0) return;
    struct sigaction action {};
    action.sa_handler = OnStopSignal;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
  }
  // Calls `on_signal` (on the waiter's thread) on the first SIGINT or SIGTERM.
  void Start(std::function<void()> on_signal) {
    if (signal_pipe[0] < 0) return;
    thread_ = std::thread([this, on_signal = std::move(on_signal)] {
      char c = 0;
      ssize_t n = 0;
      while ((n = read(signal_pipe[0], &c, 1)) < 0 && errno == EINTR) {
      }
      if (n != 1 || c == 0) return;  // 0: the destructor's wake-up
      signalled_ = true;
      on_signal();
    });
  }
  ~SignalWaiter() {
    if (!thread_.joinable()) return;
    const char wake = 0;
    (void)!write(signal_pipe[1], &wake, 1);
    thread_.join();
  }
  bool signalled() const { return signalled_; }

 private:
  std::atomic<bool> signalled_{false};
  std::thread thread_;
};

}  // namespace

int WatchMain(GlobalFlags globals, const std::vector<std::string>& args, const RenderFn& render) {
  auto parsed = Parse(std::move(globals), args);
  if (!parsed.ok()) {
    std::fprintf(stderr, "wmtyctl watch: %s\n", std::string(parsed.status().message()).c_str());
    return kExitUsage;
  }
  if (parsed->globals.help) {
    std::fputs(kHelp, stdout);
    return kExitOk;
  }
  auto credentials = ChannelCredentialsFor(parsed->globals.tls);
  if (!credentials.ok()) {
    std::fprintf(stderr, "wmtyctl watch: %s\n", std::string(credentials.status().message()).c_str());
    return kExitUsage;
  }
  parsed->options.on_retry = [](const absl::Status& why, absl::Duration delay) {
    std::fprintf(stderr, "wmtyctl watch: %s: %s; reconnecting in %s\n", absl::StatusCodeToString(why.code()).c_str(),
                 std::string(why.message()).c_str(), absl::FormatDuration(delay).c_str());
  };
  client::ClientOptions options;
  options.target = parsed->globals.target;
  options.bearer_token = parsed->globals.token;
  options.credentials = *credentials;
  std::unique_ptr<client::Watcher> watch;
  absl::Status status;
  bool interrupted = false;
  {
    SignalWaiter signals;
    watch = client::Client::Connect(options)->WatchChanges(parsed->options);
    signals.Start([w = watch.get()] { w->Cancel(); });
    int64_t changes = 0;
    status = watch->Run([&](const v1::WatchChangesResponse& m) {
      if (Print(*parsed, m, render)) ++changes;
      return parsed->max_events == 0 || changes < parsed->max_events;
    });
    interrupted = signals.signalled();
  }
  const std::optional<uint64_t> at = watch->position();
  if (status.ok() || interrupted) {
    if (at.has_value()) {
      std::fprintf(stderr, "wmtyctl watch: stopped after sequence %llu (resume with --start_after=%llu)\n",
                   static_cast<unsigned long long>(*at), static_cast<unsigned long long>(*at));
    }
    return kExitOk;
  }
  PrintFailure(status);
  return kExitFailed;
}

void PrintWatchCommandLine(FILE* to) { std::fprintf(to, "  %-28s %s\n", "watch", kSummary); }

}  // namespace wmty::ctl
