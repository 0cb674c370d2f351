#include "machine.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <vector>

#include "harness/common.hpp"
#include "workload.hpp"

namespace ipcb {

namespace {

std::string first_line(const char* path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto p = line.find(':');
      if (p != std::string::npos) return line.substr(line.find_first_not_of(' ', p + 1));
    }
  }
  return "unknown";
}

// Median of 11 runs of 1000 back-to-back reads of `read`.
template <class F>
double read_cost(F read) {
  std::vector<double> v;
  for (int r = 0; r < 11; ++r) {
    const std::uint64_t t0 = rwbench::now_ns();
    std::uint64_t sink = 0;
    for (int i = 0; i < 1000; ++i)
      sink += read();
    const std::uint64_t t1 = rwbench::now_ns();
    if (sink == 1) v.push_back(0);  // keeps the loop
    v.push_back(static_cast<double>(t1 - t0) / 1000.0);
  }
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

MachineInfo probe_machine() {
  MachineInfo m;
  m.cpu_model = cpu_model();
  utsname u{};
  m.kernel =
      ::uname(&u) == 0 ? std::string(u.sysname) + " " + u.release + " " + u.machine : "unknown";
  m.online_cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  m.clocksource = first_line("/sys/devices/system/clocksource/clocksource0/current_clocksource");
#if defined(__clang__)
  m.compiler = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  m.compiler = std::string("g++ ") + __VERSION__;
#endif
#ifdef NDEBUG
  m.compiler += ", NDEBUG";
#endif
  m.timer_ns = read_cost([] { return rwbench::now_ns(); });
  m.tick_ns = read_cost([] { return ticks(); });
  std::ifstream la("/proc/loadavg");
  la >> m.load1;
  return m;
}

}  // namespace ipcb
