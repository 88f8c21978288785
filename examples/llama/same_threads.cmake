# cmake -DEXE=kvsieve-generate -P same_threads.cmake: 1, 2 and 3 threads (the products and the
# cache's attention on one pool) give the same sampled text, the same per-head policies and the
# same memory saved: the pool splits work so that every sum keeps its order.
foreach(threads 1 2 3)
  execute_process(COMMAND ${EXE} --json --threads ${threads} --seed 7 --temperature 0.8
                          --max-new-tokens 40
                  OUTPUT_VARIABLE out COMMAND_ERROR_IS_FATAL ANY)
  string(JSON text_${threads} GET "${out}" generated_text)
  string(JSON map_${threads} GET "${out}" policy_map)
  string(JSON saved_${threads} GET "${out}" kv_saved_fraction)
  string(JSON used GET "${out}" threads)
  if(NOT used EQUAL threads)
    message(FATAL_ERROR "--threads ${threads} ran with ${used} threads")
  endif()
endforeach()
foreach(threads 2 3)
  foreach(field text map saved)
    if(NOT "${${field}_1}" STREQUAL "${${field}_${threads}}")
      message(FATAL_ERROR "${field} differs between 1 and ${threads} threads:\n"
                          "${${field}_1}\n---\n${${field}_${threads}}")
    endif()
  endforeach()
endforeach()
message(STATUS "1, 2, 3 threads: same text, policies and savings (${saved_1} saved)")
