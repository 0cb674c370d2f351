// Running helper commands (ip, tc) and checking who is alive; nothing here is kv-specific.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace ringwire::tools::kv_faults {

// Runs argv[0] (searched in PATH) with the arguments; returns its exit code (127: could not
// run, -signal: killed). stdout and stderr are captured into *output when given.
int run_command(const std::vector<std::string>& argv, std::string* output = nullptr);

// True when a process with this PID exists (it may be a zombie).
bool pid_alive(pid_t pid);

}  // namespace ringwire::tools::kv_faults
