#include "common.hpp"

#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace rwbench {

bool pin_this_thread(int cpu, std::string* err) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  // pid 0: the calling thread only.
  if (::sched_setaffinity(0, sizeof set, &set) != 0) {
    if (err) *err = "sched_setaffinity(cpu " + std::to_string(cpu) + "): " + std::strerror(errno);
    return false;
  }
  return true;
}

bool get_affinity(cpu_set_t& set) {
  CPU_ZERO(&set);
  return ::sched_getaffinity(0, sizeof set, &set) == 0;
}

void set_affinity(const cpu_set_t& set) {
  (void)::sched_setaffinity(0, sizeof set, &set);
}

std::uint64_t thread_preemptions() noexcept {
  rusage ru{};
  if (::getrusage(RUSAGE_THREAD, &ru) != 0) return 0;
  return static_cast<std::uint64_t>(ru.ru_nivcsw);
}

double steal_ms(int cpu) {
  std::ifstream f("/proc/stat");
  const std::string want = "cpu" + std::to_string(cpu);
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string name;
    in >> name;
    if (name != want) continue;
    // user nice system idle iowait irq softirq steal
    unsigned long long v[8] = {};
    for (auto& x : v)
      in >> x;
    if (!in) return -1;
    return static_cast<double>(v[7]) * 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }
  return -1;
}

std::string next_segment_name() {
  static std::atomic<unsigned> counter{0};
  return "bench." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
}

bool Watch::slow_check() noexcept {
  if (s_->abort.load(std::memory_order_relaxed) != 0) {
    failed_ = true;
    return true;
  }
  bool give_up = now_ns() > deadline_;
  if (!give_up && child_ > 0) {
    // WNOWAIT: look without reaping, the runner still waitpid()s the child.
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(child_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == child_) {
      give_up = true;
    }
  }
  if (give_up) {
    s_->abort.store(1, std::memory_order_relaxed);
    failed_ = true;
  }
  return give_up;
}

}  // namespace rwbench
