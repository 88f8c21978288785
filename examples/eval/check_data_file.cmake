# kvsieve-eval --data-file: the full cache runs on the documents of DATA (results.csv names the
# file in its data column); a malformed line, a document without "text" and a missing file each
# fail with a message naming the file and line.
file(REMOVE_RECURSE ${OUT})
execute_process(COMMAND ${EXE} --quick --data-file ${DATA} --groups main --match none-such
                        --out ${OUT}/ok
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "kvsieve-eval --data-file failed (${rc}): ${err}")
endif()
file(STRINGS ${OUT}/ok/results.csv lines)
list(LENGTH lines n)
list(GET lines 1 row)
if(NOT n EQUAL 2 OR NOT row MATCHES "^main,mixed\\.jsonl,full,full,")
  message(FATAL_ERROR "results.csv: expected one full-cache row on mixed.jsonl, got:\n${lines}")
endif()

file(WRITE ${OUT}/bad-json.jsonl "{\"source\": \"a\", \"name\": \"b\", \"text\": \"ok\"}\n{not json\n")
file(WRITE ${OUT}/no-text.jsonl "{\"source\": \"a\", \"name\": \"b\", \"text\": 3}\n")
foreach(case bad-json:line\ 2 no-text:line\ 1 missing:cannot\ open)
  string(REPLACE ":" ";" parts "${case}")
  list(GET parts 0 name)
  list(GET parts 1 expected)
  execute_process(COMMAND ${EXE} --quick --data-file ${OUT}/${name}.jsonl --groups main
                          --out ${OUT}/${name}
                  RESULT_VARIABLE rc ERROR_VARIABLE err)
  string(FIND "${err}" "${expected}" at)
  if(rc EQUAL 0 OR at EQUAL -1 OR NOT err MATCHES "${name}\\.jsonl")
    message(FATAL_ERROR "--data-file ${name}.jsonl: expected a failure naming the file and "
                        "'${expected}', got ${rc}: ${err}")
  endif()
endforeach()
