# Warnings and sanitizers applied to every target we compile.
function(ringwire_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
    -Wno-sign-conversion)
  if(RINGWIRE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

if(RINGWIRE_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -g -O1)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC warns that TSan does not model atomic_thread_fence. The fences are the
    # seq_cst pair of the futex sleep handshake in blocking.hpp and the acquire
    # fence of the KV cache's seqlock read (cache_table.hpp). Both order only
    # atomic accesses (no plain data), so TSan reports no race it should; what it
    # cannot check there is the ordering itself, which the stress tests check by
    # verifying every value read (kv_cache_seqlock_threads_test: torn reads fail).
    add_compile_options(-Wno-tsan)
  endif()
  add_link_options(-fsanitize=thread)
elseif(RINGWIRE_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
    -fno-omit-frame-pointer -g -O1)
  add_link_options(-fsanitize=address,undefined)
elseif(NOT RINGWIRE_SANITIZE STREQUAL "")
  message(FATAL_ERROR "RINGWIRE_SANITIZE must be '', 'thread' or 'address'")
endif()
