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

# SentencePiece over runs of spaces: ~6 bytes per token, more than the 4 a first piece assumes.
# The snippets and stability prompts still get their tokens (longer pieces); documents too short
# for them are a clean error saying so.
if(DEFINED MODEL2)
  set(doc "")
  string(REPEAT " " 60 pad)
  foreach(i RANGE 60)
    string(APPEND doc "${i}${pad}= ${i};\\n")
  endforeach()
  file(WRITE ${OUT}/indented.jsonl "")
  foreach(d a b c)
    file(APPEND ${OUT}/indented.jsonl
         "{\"source\": \"t\", \"name\": \"${d}\", \"text\": \"${doc}\"}\n")
  endforeach()
  execute_process(COMMAND ${EXE} --quick --model ${MODEL2} --data-file ${OUT}/indented.jsonl
                          --groups main,stability --match none-such --out ${OUT}/indented
                  RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "--data-file indented.jsonl with ${MODEL2}: failed (${rc}): ${err}")
  endif()
  string(SUBSTRING "${doc}" 0 1400 short)
  file(WRITE ${OUT}/short.jsonl "{\"source\": \"t\", \"name\": \"s\", \"text\": \"${short}\"}\n")
  execute_process(COMMAND ${EXE} --quick --model ${MODEL2}
                          --data-file ${OUT}/short.jsonl --groups main --match none-such
                          --out ${OUT}/short
                  RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(rc EQUAL 0 OR NOT err MATCHES "--snippets 2: the data has too few documents of 256 tokens")
    message(FATAL_ERROR "--data-file short.jsonl: expected a too-few-documents error, got "
                        "${rc}: ${err}")
  endif()
endif()
