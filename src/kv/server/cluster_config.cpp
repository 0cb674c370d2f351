#include "server/cluster_config.hpp"

#include <algorithm>
#include <set>

namespace ringwire::kv::server {

namespace {

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

bool valid_address(std::string_view a) {
  const auto colon = a.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 >= a.size()) return false;
  const std::string_view port = a.substr(colon + 1);
  if (port.size() > 5) return false;
  int p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    p = p * 10 + (c - '0');
  }
  return p > 0 && p < 65536;
}

}  // namespace

raft::NodeId member_id_for(std::string_view peer_address) {
  const std::uint64_t h = fnv1a(normalize_address(peer_address));
  return h == raft::kNone ? 1 : h;
}

std::string normalize_address(std::string_view url) {
  for (std::string_view scheme : {"http://", "https://", "grpc://"}) {
    if (url.substr(0, scheme.size()) == scheme) url.remove_prefix(scheme.size());
  }
  while (!url.empty() && url.back() == '/')
    url.remove_suffix(1);
  return std::string(url);
}

core::Result<std::vector<PeerSpec>> parse_cluster(std::string_view text) {
  std::vector<PeerSpec> out;
  while (!text.empty()) {
    const auto comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (item.empty()) continue;
    const auto eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return {core::Errc::invalid_argument,
              "--cluster element '" + std::string(item) + "' is not name=host:port"};
    }
    PeerSpec p;
    p.name = std::string(item.substr(0, eq));
    p.peer_address = normalize_address(item.substr(eq + 1));
    if (!valid_address(p.peer_address)) {
      return {core::Errc::invalid_argument,
              "--cluster element '" + std::string(item) + "': bad address (want host:port)"};
    }
    p.id = member_id_for(p.peer_address);
    out.push_back(std::move(p));
  }
  return out;
}

core::Status finalize(ServerConfig& cfg) {
  using core::Errc;
  cfg.peer_listen = normalize_address(cfg.peer_listen);
  cfg.listen = normalize_address(cfg.listen);
  if (!valid_address(cfg.listen)) return {Errc::invalid_argument, "--listen: want host:port"};
  if (!valid_address(cfg.peer_listen)) {
    return {Errc::invalid_argument, "--peer-listen: want host:port"};
  }
  if (cfg.data_dir.empty()) return {Errc::invalid_argument, "--data-dir is required"};
  if (cfg.tick_ms < 1 || cfg.tick_ms > 1000) return {Errc::invalid_argument, "--tick-ms: 1..1000"};
  if (cfg.heartbeat_ticks < 1 || cfg.election_ticks < 3 * cfg.heartbeat_ticks) {
    return {Errc::invalid_argument, "--election-ticks must be at least 3x --heartbeat-ticks"};
  }
  if (cfg.cluster.empty()) cfg.cluster.push_back({cfg.name, cfg.peer_listen, raft::kNone});
  std::set<std::string> names, addrs;
  bool self_found = false;
  for (auto& p : cfg.cluster) {
    p.id = member_id_for(p.peer_address);
    if (!names.insert(p.name).second) {
      return {Errc::invalid_argument, "--cluster: name '" + p.name + "' appears twice"};
    }
    if (!addrs.insert(p.peer_address).second) {
      return {Errc::invalid_argument, "--cluster: address " + p.peer_address + " appears twice"};
    }
    if (p.name == cfg.name) {
      self_found = true;
      if (p.peer_address != cfg.peer_listen) {
        return {Errc::invalid_argument, "--cluster gives " + p.name + " the address " +
                                            p.peer_address + " but --peer-listen is " +
                                            cfg.peer_listen};
      }
    }
  }
  if (!self_found && !cfg.join_existing) {
    return {Errc::invalid_argument,
            "--name " + cfg.name +
                " is not in --cluster (a member that joins later needs --initial-cluster-state "
                "existing)"};
  }
  cfg.self_id = member_id_for(cfg.peer_listen);
  std::vector<std::string> sorted(addrs.begin(), addrs.end());
  std::string all;
  for (const auto& a : sorted)
    all += a + ",";
  cfg.cluster_id = fnv1a(all);
  return {};
}

}  // namespace ringwire::kv::server
