// The replay driver of our fuzz targets for compilers without libFuzzer (GCC, or a TSan build):
// a fixed number of generated inputs, or the files named on the command line (crash files
// from a libFuzzer run), fed to LLVMFuzzerTestOneInput.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace ringwire::test::fuzz {

// splitmix64: each target seeds its own stream, so a run is the same every time.
class ReplayRng {
 public:
  explicit ReplayRng(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() noexcept {
    s_ += 0x9e3779b97f4a7c15ull;
    std::uint64_t z = s_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

 private:
  std::uint64_t s_;
};

// TSan runs are ~20x slower: fewer generated inputs there.
inline bool scaled_down() {
#if defined(__SANITIZE_THREAD__)
  return true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
  return true;
#endif
#endif
  const char* s = std::getenv("RINGWIRE_STRESS_SCALE");
  return s != nullptr && std::strcmp(s, "tsan") == 0;
}

struct ReplayPlan {
  std::uint64_t inputs = 0;        // generated inputs to run
  std::vector<const char*> files;  // or these files, each once
};

// argv: a number (how many generated inputs) and/or file names.
inline ReplayPlan replay_plan(int argc, char** argv, std::uint64_t default_inputs) {
  ReplayPlan p;
  p.inputs = default_inputs;
  for (int i = 1; i < argc; ++i) {
    char* end = nullptr;
    const unsigned long long v = std::strtoull(argv[i], &end, 10);
    if (end != argv[i] && *end == '\0') {
      p.inputs = v;
    } else {
      p.files.push_back(argv[i]);
    }
  }
  if (scaled_down()) p.inputs = p.inputs / 20 + 1;
  return p;
}

// Feeds each file to the target; exit code 0, or 2 if a file cannot be read.
inline int replay_files(const char* tool, const std::vector<const char*>& files,
                        int (*target)(const std::uint8_t*, std::size_t)) {
  for (const char* f : files) {
    std::FILE* fp = std::fopen(f, "rb");
    if (fp == nullptr) {
      std::perror(f);
      return 2;
    }
    std::vector<std::uint8_t> buf;
    std::uint8_t chunk[4096];
    for (std::size_t got; (got = std::fread(chunk, 1, sizeof chunk, fp)) > 0;)
      buf.insert(buf.end(), chunk, chunk + got);
    std::fclose(fp);
    target(buf.data(), buf.size());
    std::printf("%s: replayed %s (%zu bytes)\n", tool, f, buf.size());
  }
  return 0;
}

}  // namespace ringwire::test::fuzz
