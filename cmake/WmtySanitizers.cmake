# Sanitizer and fuzzing builds (docs/testing.md). Included by the top-level
# CMakeLists.txt before any target is defined, so the flags apply to every
# target of the tree. Only our code is instrumented: Debian's gRPC, protobuf,
# Abseil and RocksDB are not.
#
#   -DWMTY_SANITIZE=address  ASan + UBSan (LSan included). Any compiler.
#                            scripts/sanitize.sh asan (build-asan).
#   -DWMTY_SANITIZE=thread   TSan. Every executable also gets
#                            tests/sanitizers/tsan_absl_shim.cc, which makes
#                            absl::Mutex visible to TSan (see that file).
#                            scripts/sanitize.sh tsan (build-tsan).
#   -DWMTY_FUZZ=ON           clang only: our code with ASan + UBSan + libFuzzer
#                            coverage; tests/fuzz targets linked with
#                            -fsanitize=fuzzer. scripts/fuzz.sh (build-fuzz).
#
# -g1 (line tables only) keeps reports symbolized with file:line at little
# build cost. UBSan aborts at the first finding (-fno-sanitize-recover), so a
# test or fuzz run fails instead of printing and going on.

set(WMTY_SANITIZE "" CACHE STRING "Sanitizer build: address (ASan+UBSan), thread (TSan) or empty")
set_property(CACHE WMTY_SANITIZE PROPERTY STRINGS "" address thread)
option(WMTY_FUZZ "Build the libFuzzer targets of tests/fuzz (clang; implies ASan+UBSan)" OFF)

# The flags, also for tests that build outside projects against our
# libraries (tests/install).
set(WMTY_SANITIZER_FLAGS "")

# RapidJSON 1.1.0's parse stack does arithmetic on a null pointer (see
# tests/sanitizers/ubsan_ignorelist.txt). clang can exempt that one header;
# gcc has no per-file list, so there the pointer-overflow check is off.
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  set(WMTY_UBSAN_EXCEPTIONS -fsanitize-ignorelist=${PROJECT_SOURCE_DIR}/tests/sanitizers/ubsan_ignorelist.txt
      # RapidJSON's iterators trip clang's C++20 reversed-operator warning in every file that uses them.
      -Wno-ambiguous-reversed-operator)
else()
  set(WMTY_UBSAN_EXCEPTIONS -fno-sanitize=pointer-overflow)
endif()

if(WMTY_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "WMTY_FUZZ needs clang (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++")
  endif()
  if(WMTY_SANITIZE)
    message(FATAL_ERROR "WMTY_FUZZ already builds with ASan+UBSan: leave WMTY_SANITIZE empty")
  endif()
  set(WMTY_SANITIZER_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g1
      ${WMTY_UBSAN_EXCEPTIONS})
  add_compile_options(-fsanitize=fuzzer-no-link ${WMTY_SANITIZER_FLAGS})
  add_link_options(-fsanitize=address,undefined)
elseif(WMTY_SANITIZE STREQUAL "address")
  set(WMTY_SANITIZER_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g1
      ${WMTY_UBSAN_EXCEPTIONS})
  add_compile_options(${WMTY_SANITIZER_FLAGS})
  add_link_options(-fsanitize=address,undefined)
elseif(WMTY_SANITIZE STREQUAL "thread")
  set(WMTY_SANITIZER_FLAGS -fsanitize=thread -fno-omit-frame-pointer -g1)
  add_compile_options(${WMTY_SANITIZER_FLAGS})
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # g++ warns at every Boost.Asio handler that TSan does not model
    # std::atomic_thread_fence; Asio's handler hand-off also goes through its
    # mutexes (pthread, seen by TSan), so the warning is noise here.
    add_compile_options(-Wno-tsan)
  endif()
  add_link_options(-fsanitize=thread)

  # Adds the absl::Mutex shim to every executable of the tree, once every
  # directory has been processed (deferred to the end of the top-level
  # CMakeLists.txt). Its definitions must live in the executable and be
  # exported (tsan_absl_shim.dynlist: those symbols only) so that calls from
  # the shared libraries (gRPC, Abseil itself) resolve to them too.
  function(wmty_tsan_collect_executables dir out)
    get_property(targets DIRECTORY "${dir}" PROPERTY BUILDSYSTEM_TARGETS)
    set(found "")
    foreach(t IN LISTS targets)
      get_target_property(type ${t} TYPE)
      if(type STREQUAL "EXECUTABLE")
        list(APPEND found ${t})
      endif()
    endforeach()
    get_property(subdirs DIRECTORY "${dir}" PROPERTY SUBDIRECTORIES)
    foreach(sub IN LISTS subdirs)
      wmty_tsan_collect_executables("${sub}" sub_found)
      list(APPEND found ${sub_found})
    endforeach()
    set(${out} ${found} PARENT_SCOPE)
  endfunction()
  function(wmty_tsan_add_shim)
    wmty_tsan_collect_executables("${PROJECT_SOURCE_DIR}" executables)
    foreach(exe IN LISTS executables)
      target_sources(${exe} PRIVATE "${PROJECT_SOURCE_DIR}/tests/sanitizers/tsan_absl_shim.cc")
      target_link_libraries(${exe} PRIVATE absl::synchronization ${CMAKE_DL_LIBS})
      target_link_options(${exe} PRIVATE
        "LINKER:--dynamic-list=${PROJECT_SOURCE_DIR}/tests/sanitizers/tsan_absl_shim.dynlist")
    endforeach()
  endfunction()
  cmake_language(DEFER DIRECTORY "${PROJECT_SOURCE_DIR}" CALL wmty_tsan_add_shim)
elseif(WMTY_SANITIZE)
  message(FATAL_ERROR "WMTY_SANITIZE must be address, thread or empty (got ${WMTY_SANITIZE})")
endif()
