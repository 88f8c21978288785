# kvsieve-eval --write-snippets: N JSON lines {"name", "prompt", "continuation"} with the asked
# lengths, each prompt starting with BOS; nothing is evaluated (no CSV written); a path that
# cannot be opened is a clean failure naming it.
file(REMOVE_RECURSE ${OUT})
file(MAKE_DIRECTORY ${OUT})
execute_process(COMMAND ${EXE} --snippets 3 --prompt-tokens 20 --continuation-tokens 30
                        --out ${OUT}/csv --write-snippets ${OUT}/snippets.jsonl
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "kvsieve-eval --write-snippets failed (${rc}): ${err}")
endif()
if(EXISTS ${OUT}/csv)
  message(FATAL_ERROR "--write-snippets evaluated (wrote ${OUT}/csv)")
endif()
file(STRINGS ${OUT}/snippets.jsonl lines)
list(LENGTH lines n)
if(NOT n EQUAL 3)
  message(FATAL_ERROR "snippets.jsonl: expected 3 lines, got ${n}")
endif()
foreach(line IN LISTS lines)
  string(JSON name GET "${line}" name)
  string(JSON np LENGTH "${line}" prompt)
  string(JSON nc LENGTH "${line}" continuation)
  string(JSON first GET "${line}" prompt 0)
  if(name STREQUAL "" OR NOT np EQUAL 20 OR NOT nc EQUAL 30 OR NOT first EQUAL ${BOS})
    message(FATAL_ERROR "snippets.jsonl: expected a name, 20 prompt tokens starting with BOS "
                        "(${BOS}) and 30 continuation tokens, got: ${line}")
  endif()
endforeach()

execute_process(COMMAND ${EXE} --snippets 1 --write-snippets ${OUT}/no-such-dir/s.jsonl
                RESULT_VARIABLE rc ERROR_VARIABLE err)
string(FIND "${err}" "cannot open ${OUT}/no-such-dir/s.jsonl" at)
if(rc EQUAL 0 OR at EQUAL -1)
  message(FATAL_ERROR "--write-snippets to a missing folder: expected a failure naming the "
                      "path, got ${rc}: ${err}")
endif()
