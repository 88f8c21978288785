# cmake -DSOURCE=... -DBINARY=... -DARGS=... -P run_consumer.cmake
# Configures, builds and runs the consumer project in tests/package.
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE} -B ${BINARY} ${ARGS}
                        -DKVSIEVE_BUILD_TESTS=OFF -DKVSIEVE_BUILD_EXAMPLES=OFF
                        -DKVSIEVE_BUILD_BENCHMARKS=OFF -DKVSIEVE_ENABLE_CUDA=OFF
                COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BINARY} COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND ${BINARY}/consumer COMMAND_ERROR_IS_FATAL ANY)
