// What every long-running ringwire tool does first: parse its command line with the project's
// exit-code convention, and log to stderr through spdlog.
#pragma once

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <optional>
#include <string>

#include "ringwire/core/status.hpp"

namespace ringwire::tools {

// Parses argv. nullopt: go on. Otherwise the exit code to return: 0 after --help (or
// --version), printed on stdout; 2 after a parse error, with the ERROR line on stderr.
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // CallForHelp, CallForAllHelp, CallForVersion
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "ERROR: invalid input or unavailable IPC resource: %s\n", e.what());
    return core::kExitInvalid;
  }
  return std::nullopt;
}

// The default logger: colour on a terminal, stderr, "<time> [tag] level message".
inline void init_stderr_logger(const std::string& name, const std::string& tag,
                               const std::string& level, bool with_date = true) {
  spdlog::set_default_logger(spdlog::stderr_color_mt(name));
  spdlog::set_pattern(std::string(with_date ? "%Y-%m-%dT%H:%M:%S.%e" : "%H:%M:%S.%e") + " [" + tag +
                      "] %^%l%$ %v");
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace ringwire::tools
