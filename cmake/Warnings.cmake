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
    # GCC warns that TSan does not model atomic_thread_fence. The only fences
    # are the seq_cst pair of the futex sleep handshake in blocking.hpp, which
    # orders relaxed flag accesses (no plain data), so nothing is hidden.
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
