# SPDX-License-Identifier: MIT
# Fails if the ELF has any undefined symbol: everything the freestanding kernel needs must be
# provided by the project. Usage: cmake -DNM=<nm> -DELF=<file> -P check_no_undefined.cmake
execute_process(COMMAND ${NM} --undefined-only ${ELF}
    OUTPUT_VARIABLE undefined RESULT_VARIABLE status)
if(NOT status EQUAL 0)
    message(FATAL_ERROR "FAIL: ${NM} failed on ${ELF}")
endif()
string(STRIP "${undefined}" undefined)
if(undefined)
    message(FATAL_ERROR "FAIL: undefined symbols in ${ELF}:\n${undefined}")
endif()
message("no undefined symbols in ${ELF}")
