// Transparent huge pages for a shared mapping: ask, then check what the kernel really did.
// madvise(MADV_HUGEPAGE) on shmem succeeds even when /sys/kernel/mm/transparent_hugepage/
// shmem_enabled says never, so success of the call proves nothing; /proc/self/smaps does.
#pragma once

#include <cstddef>

namespace ringwire::ipc::detail {

// Advises huge pages for the whole 2 MiB extents inside [base, base + len). False when no
// extent fits or the kernel refused the advice.
bool advise_huge_pages(void* base, std::size_t len) noexcept;
// Kilobytes of the mapping containing `addr` that are mapped with huge (PMD) pages.
std::size_t huge_mapped_kb(const void* addr);

}  // namespace ringwire::ipc::detail
