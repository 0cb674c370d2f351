// The kv_server processes of a fault run: started (each inside its node's network namespace,
// or on loopback ports in the fallback), killed with SIGKILL, paused with SIGSTOP, resumed and
// restarted on the same data dir. Children die with the harness (PR_SET_PDEATHSIG) and are
// killed and reaped by PID in the destructor.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ringwire/kv/client/client.hpp"

namespace ringwire::tools::kv_faults {

struct NodeSpec {
  std::string name;  // n1, n2, ...
  std::string host;  // address the node listens on
  int client_port = 0;
  int peer_port = 0;
  std::string netns_path;  // "" : run in the harness's namespace
  std::filesystem::path data_dir;
  std::filesystem::path log_path;
  std::string client_address() const { return host + ":" + std::to_string(client_port); }
  std::string peer_address() const { return host + ":" + std::to_string(peer_port); }
};

struct NodeState {
  pid_t pid = -1;
  bool paused = false;
  int starts = 0;
  std::vector<int> unexpected_exits;  // exit codes (or -signal) of exits we did not cause
  std::vector<int> expected_exits;    // ... of exits under a fault that provokes them (disk)
  bool may_exit = false;              // an exit now is expected: recorded, not restarted
};

class Nodes {
 public:
  Nodes(std::string kv_server, std::vector<NodeSpec> specs, std::vector<std::string> extra_args);
  ~Nodes();
  Nodes(const Nodes&) = delete;
  Nodes& operator=(const Nodes&) = delete;

  int size() const { return static_cast<int>(specs_.size()); }
  const NodeSpec& spec(int i) const { return specs_.at(static_cast<std::size_t>(i)); }
  const NodeState& state(int i) const { return state_.at(static_cast<std::size_t>(i)); }
  std::vector<std::string> client_addresses() const;

  // Call from the main thread only (PR_SET_PDEATHSIG is tied to the forking thread).
  bool start(int i, std::string* error);
  void kill9(int i);
  void pause(int i);
  void resume(int i);
  void kill_all();
  // Reaps members that exited by themselves (recorded in unexpected_exits); returns them.
  std::vector<int> reap_exited();
  bool running(int i) const { return state(i).pid > 0; }
  void set_may_exit(int i, bool v) { state_.at(static_cast<std::size_t>(i)).may_exit = v; }
  // Member i's log: its size now, and what was appended after `offset`.
  std::uintmax_t log_size(int i) const;
  std::string log_since(int i, std::uintmax_t offset) const;
  // Waits up to `timeout` for member i to exit; true when it did (recorded like reap_exited).
  bool wait_exit(int i, std::chrono::milliseconds timeout);

  // Status of node i (short deadline); nullopt when it does not answer.
  std::optional<kv::client::EndpointStatus> status(int i);
  // The node that says it leads with the highest term, among running, unpaused nodes.
  std::optional<int> leader();
  // Waits until a leader exists and every running node answers Status (or the time passes).
  bool wait_healthy(std::chrono::milliseconds timeout);

 private:
  std::string kv_server_;
  std::vector<NodeSpec> specs_;
  std::vector<NodeState> state_;
  std::vector<std::string> extra_args_;
  std::unique_ptr<kv::client::Client> status_client_;
};

}  // namespace ringwire::tools::kv_faults
