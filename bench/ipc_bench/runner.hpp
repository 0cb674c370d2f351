// Runs one cell: shared block, two forked and pinned workers, a parent that
// only waits (blocked in sigtimedwait, no periodic wake-ups while the workers
// measure), a hard kill at the deadline, and cleanup of every named object.
#pragma once

#include <string>

#include "cell.hpp"
#include "transport.hpp"

namespace ipcb {

struct CellOutcome {
  bool ok = false;           // both workers finished their workload
  bool interrupted = false;  // SIGINT / SIGTERM / SIGHUP arrived: stop the run
  std::string error;         // why not ok
  std::string leak;          // objects cleanup had to remove (should stay empty)
  Results result;            // copy of what the workers left
};

CellOutcome run_cell(Transport& t, const CellSpec& spec);

// Leftover /dev/shm/ringwire.<prefix>* objects: removed, and listed.
std::string remove_ringwire_leftovers(const std::string& prefix);

}  // namespace ipcb
