// ringwire-shm: list, inspect and remove ringwire shared-memory segments
// (what ipcs/ipcrm are for System V IPC). Only objects named ringwire.* in
// /dev/shm are ever touched.
//
// Exit codes: 0 ok, 2 invalid input or segment unavailable (missing, in use).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "ipc_stats.hpp"
#include "ringwire/core/status.hpp"
#include "ringwire/queue/ring_storage.hpp"
#include "ringwire/queue/spsc_ring.hpp"
#include "ringwire/shm/shm_segment.hpp"

namespace {

using nlohmann::json;
using namespace ringwire;

const char* state_name(std::uint32_t s) {
  switch (static_cast<shm::SegmentState>(s)) {
    case shm::SegmentState::initializing:
      return "initializing";
    case shm::SegmentState::ready:
      return "ready";
    case shm::SegmentState::closed:
      return "closed";
  }
  return "invalid";
}

// A segment is stale when the process that created it is gone: nobody will
// unlink it any more.
bool is_stale(const shm::SegmentInfo& i) {
  return i.header_valid && !i.creator_alive;
}

json peer_json(const shm::ProcessIdentity& p, bool alive) {
  if (p.empty()) return nullptr;
  return {{"pid", p.pid}, {"alive", alive}};
}

json info_json(const shm::SegmentInfo& i) {
  json j{{"name", i.name}, {"size", i.file_size}, {"header_valid", i.header_valid}};
  if (!i.header_valid) {
    j["problem"] = i.problem;
    return j;
  }
  j["kind"] = shm::segment_kind_name(i.kind);
  j["state"] = state_name(i.state);
  j["capacity"] = i.capacity;
  j["element_size"] = i.element_size;
  j["session_id"] = i.session_id;
  j["creator"] = peer_json(i.creator, i.creator_alive);
  j["producer"] = peer_json(i.peers[0], i.peer_alive[0]);
  j["consumer"] = peer_json(i.peers[1], i.peer_alive[1]);
  j["stale"] = is_stale(i);
  return j;
}

std::string pid_text(const shm::ProcessIdentity& p, bool alive) {
  if (p.empty()) return "-";
  return std::to_string(p.pid) + (alive ? "" : " (dead)");
}

int fail(bool as_json, const std::string& msg) {
  if (as_json) std::printf("%s\n", json{{"error", msg}, {"exit_code", 2}}.dump().c_str());
  std::fprintf(stderr, "ERROR: invalid input or unavailable IPC resource: %s\n", msg.c_str());
  return core::kExitInvalid;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "ringwire-shm: list, inspect and remove ringwire shared-memory segments\n"
      "(/dev/shm/ringwire.*). Exit codes: 0 ok, 2 invalid input or segment unavailable."};
  app.set_version_flag("--version", "ringwire-shm (ringwire) 0.1.0");
  bool as_json = false, force = false;
  std::string name;
  app.add_flag("--json", as_json, "print one JSON object on stdout");
  auto* list = app.add_subcommand("list", "list segments with their creator and state");
  auto* inspect = app.add_subcommand("inspect", "show one segment's header, peers and ring fill");
  inspect->add_option("name", name, "segment name (without the ringwire. prefix)")->required();
  auto* rm = app.add_subcommand(
      "rm", "remove a segment (refuses while its creator lives or its header is unfinished)");
  rm->add_option("name", name, "segment name")->required();
  rm->add_flag("--force", force, "remove even if the creator is still alive");
  auto* gc = app.add_subcommand("gc", "remove every stale segment (creator dead)");
  app.require_subcommand(1);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : core::kExitInvalid;
  }

  if (list->parsed()) {
    auto segs = shm::list_segments();
    if (as_json) {
      json arr = json::array();
      for (auto& s : segs)
        arr.push_back(info_json(s));
      std::printf("%s\n", json{{"segments", arr}}.dump().c_str());
      return 0;
    }
    std::printf("%-32s %-16s %-12s %10s %-14s %-14s %-14s\n", "NAME", "KIND", "STATE", "BYTES",
                "CREATOR", "PRODUCER", "CONSUMER");
    for (auto& s : segs) {
      if (!s.header_valid) {
        std::printf("%-32s %-16s %-12s %10llu  (%s)\n", s.name.c_str(), "?", "?",
                    static_cast<unsigned long long>(s.file_size), s.problem.c_str());
        continue;
      }
      std::printf("%-32s %-16s %-12s %10llu %-14s %-14s %-14s%s\n", s.name.c_str(),
                  shm::segment_kind_name(s.kind), state_name(s.state),
                  static_cast<unsigned long long>(s.file_size),
                  pid_text(s.creator, s.creator_alive).c_str(),
                  pid_text(s.peers[0], s.peer_alive[0]).c_str(),
                  pid_text(s.peers[1], s.peer_alive[1]).c_str(), is_stale(s) ? "  STALE" : "");
    }
    return 0;
  }

  if (inspect->parsed()) {
    auto info = shm::inspect_segment(name);
    if (!info) return fail(as_json, info.status().message());
    json j = info_json(*info);
    j["rings"] = tools::spsc_ring_stats(name, *info);
    if (auto ipc = tools::ipc_stats(name, *info); !ipc.is_null()) {
      j[info->kind == static_cast<std::uint32_t>(shm::SegmentKind::mailbox) ? "mailbox"
                                                                            : "channel"] = ipc;
    }
    if (as_json) {
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("%s\n", j.dump(2).c_str());
    }
    return 0;
  }

  if (rm->parsed()) {
    auto info = shm::inspect_segment(name);
    if (!info) return fail(as_json, info.status().message());
    // A header that does not validate may be a creation still in progress
    // (the name exists from shm_open on, the header comes a moment later):
    // only --force removes it.
    if (!info->header_valid && !force) {
      return fail(as_json, "segment '" + name + "' has no valid header (" + info->problem +
                               "); it may still be being created; use --force to remove anyway");
    }
    if (info->header_valid && info->creator_alive && !force) {
      return fail(as_json, "segment '" + name + "' is in use by process " +
                               std::to_string(info->creator.pid) +
                               "; use --force to remove anyway");
    }
    if (auto st = shm::remove_segment(name); !st) return fail(as_json, st.message());
    if (as_json) {
      std::printf("%s\n", json{{"removed", json::array({name})}}.dump().c_str());
    } else {
      std::printf("removed %s\n", name.c_str());
    }
    return 0;
  }

  if (gc->parsed()) {
    json removed = json::array();
    for (auto& s : shm::list_segments()) {
      if (!is_stale(s)) continue;
      if (shm::remove_segment(s.name)) {
        removed.push_back(s.name);
        if (!as_json)
          std::printf("removed %s (creator %d is gone)\n", s.name.c_str(), s.creator.pid);
      }
    }
    if (as_json) {
      std::printf("%s\n", json{{"removed", removed}}.dump().c_str());
    } else if (removed.empty()) {
      std::printf("no stale segments\n");
    }
    return 0;
  }
  return 0;
}
