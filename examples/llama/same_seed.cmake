# cmake -DEXE=kvsieve-generate -P same_seed.cmake: two sampled runs with one seed give one text,
# and another seed gives another (a short prompt: quick under the sanitizers).
foreach(run a b)
  execute_process(COMMAND ${EXE} --json --prompt "def main():\n" --seed 7 --temperature 0.8
                          --max-new-tokens 40
                  OUTPUT_VARIABLE out_${run} COMMAND_ERROR_IS_FATAL ANY)
  string(JSON text_${run} GET "${out_${run}}" generated_text)
endforeach()
execute_process(COMMAND ${EXE} --json --prompt "def main():\n" --seed 8 --temperature 0.8
                        --max-new-tokens 40
                OUTPUT_VARIABLE out_c COMMAND_ERROR_IS_FATAL ANY)
string(JSON text_c GET "${out_c}" generated_text)
if(NOT text_a STREQUAL text_b)
  message(FATAL_ERROR "same seed, different text:\n${text_a}\n---\n${text_b}")
endif()
if(text_a STREQUAL text_c)
  message(FATAL_ERROR "seeds 7 and 8 gave the same text: sampling ignores the seed?")
endif()
message(STATUS "same seed, same text (${text_a})")
