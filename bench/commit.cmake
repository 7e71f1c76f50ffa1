# Run at every build (bench/CMakeLists.txt): writes OUT with the short commit of the tree in
# SRC ("-dirty" when it has changes), or "unknown" outside a checkout, so that a capacity
# report says which code it measured. configure_file rewrites OUT only when it changes, so an
# unchanged commit rebuilds nothing.
execute_process(COMMAND git -C "${SRC}" rev-parse --short HEAD
                OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE
                RESULT_VARIABLE rc ERROR_QUIET)
if(NOT rc EQUAL 0 OR commit STREQUAL "")
  set(commit unknown)
else()
  execute_process(COMMAND git -C "${SRC}" diff --quiet HEAD --
                  RESULT_VARIABLE dirty ERROR_QUIET)
  if(NOT dirty EQUAL 0)
    string(APPEND commit "-dirty")
  endif()
endif()
file(WRITE "${OUT}.tmp" "#define DIME_BENCH_COMMIT \"${commit}\"\n")
configure_file("${OUT}.tmp" "${OUT}" COPYONLY)
