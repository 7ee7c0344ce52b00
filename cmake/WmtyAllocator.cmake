# jemalloc (Debian libjemalloc-dev) as the memory allocator of wmtyd and the
# in-process load tools. Measured (docs/performance.md): glibc malloc was a
# fifth of wmtyd's CPU on the read paths (many small protobuf and string
# allocations across threads); with jemalloc GetPatientSummary went from
# ~2.9k to ~4.3k calls/s on 2 cores. Not with sanitizers or fuzzing: they
# bring their own allocator.
#   wmty_use_jemalloc(<target>)  links it and defines WMTY_WITH_JEMALLOC.
if(WMTY_SANITIZE OR WMTY_FUZZ)
  set(WMTY_JEMALLOC_DEFAULT OFF)
else()
  set(WMTY_JEMALLOC_DEFAULT ON)
endif()
option(WMTY_JEMALLOC "Link wmtyd with jemalloc" ${WMTY_JEMALLOC_DEFAULT})
if(WMTY_JEMALLOC)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(JEMALLOC REQUIRED IMPORTED_TARGET jemalloc)
endif()

function(wmty_use_jemalloc target)
  if(WMTY_JEMALLOC)
    target_link_libraries(${target} PRIVATE PkgConfig::JEMALLOC)
    target_compile_definitions(${target} PRIVATE WMTY_WITH_JEMALLOC)
  endif()
endfunction()
