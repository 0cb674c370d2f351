// What the run ran on: CPU, kernel, clock source, timer cost, load.
#pragma once

#include <string>

namespace ipcb {

struct MachineInfo {
  std::string cpu_model;
  std::string kernel;
  long online_cpus = 0;
  std::string clocksource;
  std::string compiler;
  double timer_ns = 0;  // median cost of one clock read (CLOCK_MONOTONIC, vDSO)
  double tick_ns = 0;   // median cost of one latency timestamp (workload.hpp ticks())
  double load1 = -1;    // /proc/loadavg at the start
};

MachineInfo probe_machine();

}  // namespace ipcb
