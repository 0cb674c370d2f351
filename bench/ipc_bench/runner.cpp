#include "runner.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "harness/common.hpp"

namespace ipcb {

namespace {

constexpr std::uint64_t kGraceNs = 3'000'000'000ull;  // after the deadline, SIGKILL

[[noreturn]] void worker(Transport& t, const CellSpec& spec, SharedBlock& s, bool is_a,
                         const sigset_t& old_mask, pid_t parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // an interrupted run leaves no worker behind
  if (::getppid() != parent) ::_exit(5);
  ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a dead peer shows up as EPIPE, not a signal
  auto& err = is_a ? s.a_err : s.b_err;
  std::string why;
  bool ok = rwbench::pin_this_thread(is_a ? spec.cpu_a : spec.cpu_b, &why);
  if (!ok) {
    err.set(why);
    s.abort.store(1);
  } else {
    const std::uint64_t p0 = rwbench::thread_preemptions();
    const std::uint64_t c0 = rwbench::thread_cpu_ns(), w0 = rwbench::now_ns();
    ok = is_a ? t.side_a(spec, s) : t.side_b(spec, s);
    const double wall = static_cast<double>(rwbench::now_ns() - w0);
    const double cpu = static_cast<double>(rwbench::thread_cpu_ns() - c0);
    (is_a ? s.a_preempt : s.b_preempt) = rwbench::thread_preemptions() - p0;
    (is_a ? s.a_cpu_share : s.b_cpu_share) = wall > 0 ? cpu / wall : 0;
    if (!ok) {
      err.set("failed");
      s.abort.store(1);
    } else {
      (is_a ? s.a_done : s.b_done) = 1;
    }
  }
  if (t.clean_exit()) std::exit(ok ? 0 : 1);
  ::_exit(ok ? 0 : 1);
}

struct Child {
  pid_t pid = -1;
  bool reaped = false;
  int status = 0;
};

void reap_nohang(Child& c) {
  if (c.pid <= 0 || c.reaped) return;
  int st = 0;
  const pid_t r = ::waitpid(c.pid, &st, WNOHANG);
  if (r == c.pid) {
    c.reaped = true;
    c.status = st;
  }
}

std::string describe_status(const char* who, int st) {
  char b[96];
  if (WIFEXITED(st)) {
    std::snprintf(b, sizeof b, "worker %s exited with %d", who, WEXITSTATUS(st));
  } else if (WIFSIGNALED(st)) {
    std::snprintf(b, sizeof b, "worker %s killed by signal %d", who, WTERMSIG(st));
  } else {
    std::snprintf(b, sizeof b, "worker %s ended with status %d", who, st);
  }
  return b;
}

}  // namespace

std::string remove_ringwire_leftovers(const std::string& prefix) {
  std::string out;
  DIR* d = ::opendir("/dev/shm");
  if (!d) return out;
  const std::string want = "ringwire." + prefix;
  while (dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n.rfind(want, 0) != 0) continue;
    ::shm_unlink(("/" + n).c_str());
    out += (out.empty() ? "" : ", ") + ("/dev/shm/" + n);
  }
  ::closedir(d);
  return out;
}

CellOutcome run_cell(Transport& t, const CellSpec& spec) {
  CellOutcome out;
  void* mem = ::mmap(nullptr, sizeof(SharedBlock), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    out.error = std::string("mmap: ") + std::strerror(errno);
    return out;
  }
  auto* s = new (mem) SharedBlock();
  if (std::string e = t.prepare(spec); !e.empty()) {
    out.error = e;
    out.leak = t.cleanup(spec);
    ::munmap(mem, sizeof(SharedBlock));
    return out;
  }

  // Block the signals we wait for; the workers restore the old mask.
  sigset_t wait_set, old_mask;
  sigemptyset(&wait_set);
  for (int sig : {SIGCHLD, SIGINT, SIGTERM, SIGHUP})
    sigaddset(&wait_set, sig);
  ::sigprocmask(SIG_BLOCK, &wait_set, &old_mask);
  std::fflush(nullptr);  // nothing buffered may be written twice by a worker's exit()

  const pid_t parent = ::getpid();
  Child a, b;
  a.pid = ::fork();
  if (a.pid == 0) worker(t, spec, *s, true, old_mask, parent);
  if (a.pid > 0) {
    b.pid = ::fork();
    if (b.pid == 0) worker(t, spec, *s, false, old_mask, parent);
  }
  t.after_fork();
  if (a.pid < 0 || b.pid < 0) {
    out.error = std::string("fork: ") + std::strerror(errno);
    s->abort.store(1);
    if (a.pid > 0) ::kill(a.pid, SIGKILL);
  }

  bool ready_seen = false, killed = false;
  const std::uint64_t kill_at = spec.deadline_ns + kGraceNs;
  std::uint64_t stuck_kill_at = 0;  // set when one worker failed and the other still runs
  auto kill_both = [&](const std::string& why) {
    killed = true;
    if (out.error.empty()) out.error = why;
    if (a.pid > 0 && !a.reaped) ::kill(a.pid, SIGKILL);
    if (b.pid > 0 && !b.reaped) ::kill(b.pid, SIGKILL);
  };
  for (;;) {
    reap_nohang(a);
    reap_nohang(b);
    const bool a_gone = a.pid <= 0 || a.reaped, b_gone = b.pid <= 0 || b.reaped;
    if (a_gone && b_gone) break;
    if (!ready_seen && ((s->a_ready.load() && s->b_ready.load()) || a_gone || b_gone)) {
      ready_seen = true;
      t.on_ready(spec);
    }
    const std::uint64_t now = rwbench::now_ns();
    if (!killed) {
      if (now >= kill_at) {
        kill_both("cell timed out; workers killed");
      } else if ((a_gone || b_gone) && s->abort.load() != 0) {
        // The peer of a failed worker may be blocked in a syscall that never
        // returns (a pipe read): a short grace, then kill it.
        if (stuck_kill_at == 0) stuck_kill_at = now + 2'000'000'000ull;
        if (now >= stuck_kill_at)
          kill_both("one worker failed; the other was stuck and was killed");
      }
    }
    // Setup: poll the ready flags every ms. Measuring: sleep until a child
    // exits, a signal arrives or the next kill time.
    std::uint64_t until = kill_at;
    if (stuck_kill_at != 0) until = std::min(until, stuck_kill_at);
    std::uint64_t wait_ns = 1'000'000ull;
    if (killed) {
      wait_ns = 10'000'000ull;
    } else if (ready_seen && until > now) {
      wait_ns = std::max<std::uint64_t>(until - now, 1'000'000ull);
    }
    timespec ts{static_cast<time_t>(wait_ns / 1'000'000'000ull),
                static_cast<long>(wait_ns % 1'000'000'000ull)};
    const int sig = ::sigtimedwait(&wait_set, nullptr, &ts);
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
      out.interrupted = true;
      out.error.clear();
      kill_both("interrupted by signal " + std::to_string(sig));
    }
  }
  ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);

  out.leak = t.cleanup(spec);
  if (std::string l = remove_ringwire_leftovers("ipcb." + spec.tag + "."); !l.empty()) {
    out.leak += (out.leak.empty() ? "" : "; ") + ("removed leftover segments: " + l);
  }
  out.result = results_of(*s);
  s->~SharedBlock();
  ::munmap(mem, sizeof(SharedBlock));

  if (out.error.empty()) {
    if (!out.result.a_done || !out.result.b_done) {
      std::string e;
      if (std::string ea = out.result.a_err.str(); !ea.empty()) e = "A: " + ea;
      if (std::string eb = out.result.b_err.str(); !eb.empty()) {
        e += (e.empty() ? "" : "; ") + ("B: " + eb);
      }
      if (a.reaped && !(WIFEXITED(a.status) && WEXITSTATUS(a.status) == 0)) {
        e += (e.empty() ? "" : "; ") + describe_status("A", a.status);
      }
      if (b.reaped && !(WIFEXITED(b.status) && WEXITSTATUS(b.status) == 0)) {
        e += (e.empty() ? "" : "; ") + describe_status("B", b.status);
      }
      out.error = e.empty() ? "a worker failed" : e;
    }
  }
  out.ok = out.error.empty();
  return out;
}

}  // namespace ipcb
