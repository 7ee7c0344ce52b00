// CPU time of a process over a measurement window, for the benchmark tools'
// "CPU per call" figures (bench/run.sh). Linux only (/proc).
#ifndef WMTY_BENCH_PROCESS_CPU_H_
#define WMTY_BENCH_PROCESS_CPU_H_

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace wmty::bench {

// User + system CPU seconds used so far by process `pid` (0: this process,
// all threads). -1 when it cannot be read (the process is gone).
inline double ProcessCpuSeconds(int pid) {
  if (pid == 0) {
    rusage ru{};
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return sec(ru.ru_utime) + sec(ru.ru_stime);
  }
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return -1;
  // The command name (field 2) is in parentheses and may hold spaces; utime
  // and stime are fields 14 and 15, the 12th and 13th after it.
  const auto close = line.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(line.substr(close + 1));
  std::string field;
  long long utime = -1, stime = -1;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoll(field);
    if (i == 15) stime = std::stoll(field);
  }
  if (utime < 0 || stime < 0) return -1;
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Samples a process's CPU at `from` and at `until` on a thread of its own;
// after Join(), MicrosPer(ops) divides the CPU it used in between by ops.
class CpuWindow {
 public:
  using Clock = std::chrono::steady_clock;
  CpuWindow(int pid, Clock::time_point from, Clock::time_point until)
      : thread_([this, pid, from, until] {
          std::this_thread::sleep_until(from);
          const double start = ProcessCpuSeconds(pid);
          std::this_thread::sleep_until(until);
          const double end = ProcessCpuSeconds(pid);
          seconds_ = (start < 0 || end < 0) ? -1 : end - start;
        }) {}
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  ~CpuWindow() { Join(); }
  // Microseconds of CPU per operation, or -1.
  double MicrosPer(long long ops) const { return seconds_ < 0 || ops <= 0 ? -1 : seconds_ * 1e6 / double(ops); }

 private:
  double seconds_ = -1;
  std::thread thread_;
};

}  // namespace wmty::bench

#endif  // WMTY_BENCH_PROCESS_CPU_H_
