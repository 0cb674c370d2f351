#include "ringwire/shm/shm_segment.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <new>
#include <thread>

#include "cleanup_registry.hpp"
#include "ringwire/core/clock.hpp"
#include "ringwire/queue/ring_storage.hpp"

namespace ringwire::shm {

using core::Errc;
using core::Result;
using core::Status;

const char* segment_kind_name(std::uint32_t kind) noexcept {
  switch (static_cast<SegmentKind>(kind)) {
    case SegmentKind::raw:
      return "raw";
    case SegmentKind::spsc_ring:
      return "spsc_ring";
    case SegmentKind::mutex_queue:
      return "mutex_queue";
    case SegmentKind::spsc_ring_pair:
      return "spsc_ring_pair";
    case SegmentKind::mutex_queue_pair:
      return "mutex_queue_pair";
    case SegmentKind::channel:
      return "channel";
    case SegmentKind::mailbox:
      return "mailbox";
    case SegmentKind::kv_cache:
      return "kv_cache";
  }
  return "unknown";
}

namespace {

constexpr std::size_t kPayloadAlign = 4096;  // payload starts on its own page

Status errno_status(const std::string& what, int err) {
  Errc code = Errc::system_error;
  if (err == ENOENT) code = Errc::not_found;
  if (err == EEXIST) code = Errc::already_exists;
  if (err == EACCES || err == EPERM) code = Errc::permission_denied;
  return {code, what + ": " + std::strerror(err)};
}

std::uint64_t random_session_id() {
  std::uint64_t v = 0;
  if (::getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v)) {
    v = core::now_ns() ^ (static_cast<std::uint64_t>(::getpid()) << 32);
  }
  return v == 0 ? 1 : v;
}

std::uint64_t unix_now_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// An open + mapped object before any validation.
struct Mapping {
  void* base = nullptr;
  std::size_t size = 0;
};

Result<Mapping> map_existing(const std::string& os_name, int flags) {
  int fd = ::shm_open(os_name.c_str(), flags | O_CLOEXEC, 0);
  if (fd < 0) return errno_status("cannot open shared memory '" + os_name + "'", errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return errno_status("fstat", e);
  }
  Mapping m;
  m.size = static_cast<std::size_t>(st.st_size);
  if (m.size >= sizeof(SegmentHeader)) {
    const int prot = (flags & O_ACCMODE) == O_RDONLY ? PROT_READ : PROT_READ | PROT_WRITE;
    m.base = ::mmap(nullptr, m.size, prot, MAP_SHARED, fd, 0);
    if (m.base == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      return errno_status("mmap", e);
    }
  }
  ::close(fd);
  return m;
}

std::string hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// Checks that do not depend on what the caller expects.
Status check_header_basics(const SegmentHeader& h, std::size_t file_size) {
  if (h.magic != kMagic)
    return {Errc::bad_magic, "not a ringwire segment (magic " + hex(h.magic) + ")"};
  if (h.abi_version != kAbiVersion) {
    return {Errc::abi_mismatch, "segment ABI version " + std::to_string(h.abi_version) +
                                    ", this build speaks " + std::to_string(kAbiVersion)};
  }
  if (h.header_size != sizeof(SegmentHeader)) {
    return {Errc::layout_mismatch, "header size " + std::to_string(h.header_size) + ", expected " +
                                       std::to_string(sizeof(SegmentHeader))};
  }
  if (h.total_size != file_size) {
    return {Errc::geometry_mismatch, "header says " + std::to_string(h.total_size) +
                                         " bytes but the object has " + std::to_string(file_size)};
  }
  if (h.payload_offset < sizeof(SegmentHeader) || h.payload_offset > file_size ||
      h.payload_size > file_size - h.payload_offset) {
    return {Errc::geometry_mismatch, "payload range lies outside the segment"};
  }
  return {};
}

Status check_expected(const SegmentHeader& h, const SegmentSpec& want) {
  if (h.kind != static_cast<std::uint32_t>(want.kind)) {
    return {Errc::kind_mismatch, std::string("segment holds a ") + segment_kind_name(h.kind) +
                                     ", expected a " +
                                     segment_kind_name(static_cast<std::uint32_t>(want.kind))};
  }
  if (want.element_size != 0 && h.element_size != want.element_size) {
    return {Errc::geometry_mismatch, "element size " + std::to_string(h.element_size) +
                                         " bytes, expected " + std::to_string(want.element_size)};
  }
  if (want.capacity != 0 && h.capacity != want.capacity) {
    return {Errc::geometry_mismatch, "capacity " + std::to_string(h.capacity) + ", expected " +
                                         std::to_string(want.capacity)};
  }
  if (h.layout_hash != combined_layout_hash(want.layout_hash)) {
    return {Errc::layout_mismatch, "layout hash " + hex(h.layout_hash) + ", this build expects " +
                                       hex(combined_layout_hash(want.layout_hash)) +
                                       " (built from different sources or options)"};
  }
  return {};
}

}  // namespace

Result<std::string> os_name_for(std::string_view name) {
  if (!name.empty() && name.front() == '/') name.remove_prefix(1);
  if (name.size() >= kNamePrefix.size() && name.substr(0, kNamePrefix.size()) == kNamePrefix) {
    name.remove_prefix(kNamePrefix.size());
  }
  if (name.empty() || name.size() > 200) {
    return Result<std::string>(Errc::invalid_argument, "segment name must be 1 to 200 characters");
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      return Result<std::string>(Errc::invalid_argument,
                                 "segment name '" + std::string(name) +
                                     "' may only contain letters, digits, '.', '_' and '-'");
    }
  }
  std::string os;
  os.reserve(1 + kNamePrefix.size() + name.size());
  os.push_back('/');
  os.append(kNamePrefix);
  os.append(name);
  return os;
}

Result<ShmSegment> ShmSegment::create(std::string_view name, const SegmentSpec& spec) {
  auto os = os_name_for(name);
  if (!os) return os.status();
  const std::size_t payload_offset = queue::align_up(sizeof(SegmentHeader), kPayloadAlign);
  const std::size_t total = payload_offset + queue::align_up(spec.payload_size, kPayloadAlign);

  // The name appears in /dev/shm at shm_open; a SIGTERM between that and
  // register_owned would take the default action and leave it behind. Hold
  // the cleanup signals off across the window: a pending one is delivered at
  // the unmask, when the cleanup handler already knows the name.
  sigset_t cleanup_signals, previous;
  sigemptyset(&cleanup_signals);
  for (int sig : {SIGINT, SIGTERM, SIGHUP})
    sigaddset(&cleanup_signals, sig);
  ::pthread_sigmask(SIG_BLOCK, &cleanup_signals, &previous);
  int fd = ::shm_open(os->c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
  const int open_errno = errno;
  if (fd >= 0) detail::register_owned(*os);
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (fd < 0) return errno_status("cannot create shared memory '" + *os + "'", open_errno);
  // From here on the name exists: any failure must unlink it again.
  ShmSegment seg;
  seg.name_ = *os;
  seg.owner_ = true;
  seg.owner_pid_ = static_cast<std::int32_t>(::getpid());
  if (::ftruncate(fd, static_cast<off_t>(total)) != 0) {
    int e = errno;
    ::close(fd);
    return errno_status("ftruncate to " + std::to_string(total) + " bytes", e);
  }
  void* base = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int e = errno;
  struct stat st {};
  if (::fstat(fd, &st) == 0) {
    seg.inode_ = st.st_ino;
    seg.device_ = st.st_dev;
  }
  ::close(fd);
  if (base == MAP_FAILED) return errno_status("mmap", e);
  seg.base_ = base;
  seg.size_ = total;
  seg.payload_size_ = spec.payload_size;
  seg.session_id_ = random_session_id();

  auto* h = new (base) SegmentHeader();
  h->state.store(static_cast<std::uint32_t>(SegmentState::initializing), std::memory_order_relaxed);
  h->abi_version = kAbiVersion;
  h->header_size = sizeof(SegmentHeader);
  h->layout_hash = combined_layout_hash(spec.layout_hash);
  h->kind = static_cast<std::uint32_t>(spec.kind);
  h->element_size = spec.element_size;
  h->capacity = spec.capacity;
  h->payload_offset = payload_offset;
  h->payload_size = spec.payload_size;
  h->total_size = total;
  h->session_id = seg.session_id_;
  const auto self = ProcessIdentity::self();
  h->creator_pid = self.pid;
  h->creator_start_time = self.start_time;
  h->created_unix_ns = unix_now_ns();
  // Magic last: until it is there an opener sees "not a ringwire segment yet"
  // and, with state still initializing, waits instead of failing.
  __atomic_store_n(&h->magic, kMagic, __ATOMIC_RELEASE);
  return seg;
}

Result<ShmSegment> ShmSegment::open(std::string_view name, const SegmentSpec& expected,
                                    const OpenOptions& options) {
  auto os = os_name_for(name);
  if (!os) return os.status();
  const auto deadline = core::Deadline::after(std::chrono::nanoseconds(options.wait_ready_ns));
  for (;;) {
    auto m = map_existing(*os, O_RDWR);
    if (!m) return m.status();
    ShmSegment seg;
    seg.name_ = *os;
    seg.base_ = m->base;
    seg.size_ = m->size;
    Status problem;
    if (m->base == nullptr) {
      problem = {Errc::not_ready, "segment '" + std::string(name) + "' is " +
                                      std::to_string(m->size) +
                                      " bytes, smaller than a header: creation not finished"};
    } else {
      const SegmentHeader& h = seg.header();
      const auto state = h.state.load(std::memory_order_acquire);
      if (__atomic_load_n(&h.magic, __ATOMIC_ACQUIRE) == 0) {
        problem = {Errc::not_ready, "segment '" + std::string(name) + "' has no header yet"};
      } else if (auto st = check_header_basics(h, m->size); !st) {
        return Status(st.code(), "segment '" + std::string(name) + "': " + st.message());
      } else if (auto st2 = check_expected(h, expected); !st2) {
        return Status(st2.code(), "segment '" + std::string(name) + "': " + st2.message());
      } else {
        ProcessIdentity creator{h.creator_pid, h.creator_start_time};
        const bool creator_alive = creator.is_alive();
        if (!creator_alive && !options.allow_dead_creator) {
          return Status(Errc::creator_dead,
                        "segment '" + std::string(name) + "' was left by process " +
                            std::to_string(creator.pid) +
                            ", which is gone; remove it with `ringwire-shm rm " +
                            std::string(name) + "` or `ringwire-shm gc`");
        }
        if (state == static_cast<std::uint32_t>(SegmentState::ready)) {
          seg.payload_size_ = h.payload_size;
          seg.session_id_ = h.session_id;
          return seg;
        }
        if (state == static_cast<std::uint32_t>(SegmentState::closed)) {
          return Status(Errc::closed,
                        "segment '" + std::string(name) + "' was closed by its owner");
        }
        if (state != static_cast<std::uint32_t>(SegmentState::initializing)) {
          return Status(Errc::corrupted, "segment '" + std::string(name) + "' has invalid state " +
                                             std::to_string(state));
        }
        problem = {Errc::not_ready, "segment '" + std::string(name) +
                                        "' is still being initialised by process " +
                                        std::to_string(creator.pid)};
      }
    }
    if (deadline.expired()) return problem;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

ShmSegment::ShmSegment(ShmSegment&& o) noexcept {
  *this = std::move(o);
}

ShmSegment& ShmSegment::operator=(ShmSegment&& o) noexcept {
  if (this != &o) {
    reset();
    name_ = std::move(o.name_);
    base_ = std::exchange(o.base_, nullptr);
    size_ = std::exchange(o.size_, 0);
    payload_size_ = std::exchange(o.payload_size_, 0);
    session_id_ = std::exchange(o.session_id_, 0);
    owner_ = std::exchange(o.owner_, false);
    unlinked_ = std::exchange(o.unlinked_, false);
    owner_pid_ = std::exchange(o.owner_pid_, 0);
    inode_ = std::exchange(o.inode_, 0);
    device_ = std::exchange(o.device_, 0);
  }
  return *this;
}

ShmSegment::~ShmSegment() {
  reset();
}

void ShmSegment::reset() noexcept {
  // A forked child holds a copy of its parent's segment object: only the
  // creating process may close and unlink.
  const bool owner_here = owner_ && owner_pid_ == ::getpid();
  if (owner_here && base_ != nullptr) {
    header().state.store(static_cast<std::uint32_t>(SegmentState::closed),
                         std::memory_order_release);
  }
  if (owner_here && !unlinked_) {
    // If someone removed our name and another process re-created it, the
    // name is no longer ours to unlink. (A window remains between this check
    // and the unlink; POSIX offers no unlink-if-same-object.)
    if (base_ == nullptr || name_still_ours()) ::shm_unlink(name_.c_str());
    detail::unregister_owned(name_);
  }
  if (base_ != nullptr) ::munmap(base_, size_);
  base_ = nullptr;
  owner_ = false;
}

void* ShmSegment::payload() const noexcept {
  return static_cast<std::byte*>(base_) + header().payload_offset;
}

void ShmSegment::mark_ready() noexcept {
  // release: the payload built by the creator is visible to any opener that
  // reads state == ready with acquire.
  header().state.store(static_cast<std::uint32_t>(SegmentState::ready), std::memory_order_release);
}

void ShmSegment::register_peer(PeerRole role) noexcept {
  auto& slot = header().peers[static_cast<std::size_t>(role)];
  const auto self = ProcessIdentity::self();
  slot.start_time.store(self.start_time, std::memory_order_relaxed);
  slot.heartbeat_ns.store(core::now_ns(), std::memory_order_relaxed);
  slot.pid.store(self.pid, std::memory_order_release);
}

void ShmSegment::heartbeat(PeerRole role) noexcept {
  header().peers[static_cast<std::size_t>(role)].heartbeat_ns.store(core::now_ns(),
                                                                    std::memory_order_relaxed);
}

ProcessIdentity ShmSegment::peer(PeerRole role) const noexcept {
  auto& slot = header().peers[static_cast<std::size_t>(role)];
  ProcessIdentity id;
  id.pid = slot.pid.load(std::memory_order_acquire);
  id.start_time = slot.start_time.load(std::memory_order_relaxed);
  return id;
}

bool ShmSegment::peer_alive(PeerRole role) const {
  return peer(role).is_alive();
}

bool ShmSegment::creator_alive() const {
  return ProcessIdentity{header().creator_pid, header().creator_start_time}.is_alive();
}

Status ShmSegment::check_session() const {
  const auto& h = header();
  if (h.session_id != session_id_) {
    return {Errc::session_changed, "segment '" + name_ + "' session changed under us"};
  }
  if (h.state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(SegmentState::ready)) {
    return {Errc::closed, "segment '" + name_ + "' is no longer ready"};
  }
  return {};
}

Status ShmSegment::session_still_named() const {
  auto m = map_existing(name_, O_RDONLY);
  if (!m) return {Errc::session_changed, "segment '" + name_ + "' no longer exists under its name"};
  Status st;
  if (m->base == nullptr || static_cast<const SegmentHeader*>(m->base)->session_id != session_id_) {
    st = {Errc::session_changed, "segment '" + name_ + "' was re-created with a new session"};
  }
  if (m->base != nullptr) ::munmap(m->base, m->size);
  return st;
}

bool ShmSegment::name_still_ours() const {
  int fd = ::shm_open(name_.c_str(), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return false;
  struct stat st {};
  const bool same = ::fstat(fd, &st) == 0 && st.st_ino == inode_ && st.st_dev == device_;
  ::close(fd);
  return same;
}

void ShmSegment::take_ownership() {
  if (owner_ && owner_pid_ == ::getpid()) return;
  // Register before the header says so: a SIGTERM in between then still unlinks.
  detail::register_owned(name_);
  const auto self = ProcessIdentity::self();
  auto& h = header();
  h.creator_start_time = self.start_time;
  h.creator_pid = self.pid;
  owner_ = true;
  owner_pid_ = static_cast<std::int32_t>(::getpid());
  unlinked_ = false;
  struct stat st {};
  int fd = ::shm_open(name_.c_str(), O_RDONLY | O_CLOEXEC, 0);
  if (fd >= 0) {
    if (::fstat(fd, &st) == 0) {
      inode_ = st.st_ino;
      device_ = st.st_dev;
    }
    ::close(fd);
  }
}

void ShmSegment::release_ownership() noexcept {
  if (owner_ && owner_pid_ == ::getpid()) detail::unregister_owned(name_);
  owner_ = false;
}

Status ShmSegment::unlink() {
  if (unlinked_) return {};
  if (::shm_unlink(name_.c_str()) != 0) return errno_status("shm_unlink " + name_, errno);
  detail::unregister_owned(name_);
  unlinked_ = true;
  return {};
}

Result<SegmentInfo> inspect_segment(std::string_view name) {
  auto os = os_name_for(name);
  if (!os) return os.status();
  auto m = map_existing(*os, O_RDONLY);
  if (!m) return m.status();
  SegmentInfo info;
  info.name = os->substr(1 + kNamePrefix.size());
  info.file_size = m->size;
  if (m->base == nullptr) {
    info.problem = "smaller than a header (creation unfinished or not ours)";
    return info;
  }
  const auto& h = *static_cast<const SegmentHeader*>(m->base);
  if (auto st = check_header_basics(h, m->size); !st) {
    info.problem = st.message();
  } else {
    info.header_valid = true;
  }
  // Every field below is copied, not trusted: the tool only prints them.
  info.kind = h.kind;
  info.state = h.state.load(std::memory_order_acquire);
  info.capacity = h.capacity;
  info.element_size = h.element_size;
  info.payload_size = h.payload_size;
  info.session_id = h.session_id;
  info.created_unix_ns = h.created_unix_ns;
  info.creator = {h.creator_pid, h.creator_start_time};
  info.creator_alive = info.creator.is_alive();
  for (std::size_t i = 0; i < kPeerSlots; ++i) {
    info.peers[i].pid = h.peers[i].pid.load(std::memory_order_acquire);
    info.peers[i].start_time = h.peers[i].start_time.load(std::memory_order_relaxed);
    info.peer_alive[i] = info.peers[i].is_alive();
  }
  ::munmap(m->base, m->size);
  return info;
}

std::vector<SegmentInfo> list_segments() {
  std::vector<SegmentInfo> out;
  DIR* d = ::opendir("/dev/shm");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n.size() <= kNamePrefix.size() || n.substr(0, kNamePrefix.size()) != kNamePrefix) continue;
    auto info = inspect_segment(n.substr(kNamePrefix.size()));
    if (info) {
      out.push_back(std::move(info.value()));
    } else {
      SegmentInfo bad;
      bad.name = std::string(n.substr(kNamePrefix.size()));
      bad.problem = info.status().message();
      out.push_back(std::move(bad));
    }
  }
  ::closedir(d);
  return out;
}

Status remove_segment(std::string_view name) {
  auto os = os_name_for(name);
  if (!os) return os.status();
  if (::shm_unlink(os->c_str()) != 0) {
    return errno_status("cannot remove segment '" + std::string(name) + "'", errno);
  }
  return {};
}

}  // namespace ringwire::shm
