# SPDX-License-Identifier: MIT
# Runs one QEMU boot for CTest and decides pass or fail from the exit status *and* the output
# (see bedrock_add_qemu_test in qemu.cmake). Usage:
#   cmake -DLAUNCHER=<script> -DARGS="<qemu args>" -DEXPECT_STATUS=<n | either | hang>
#         [-DEXPECT_FAILURE_REGEX=<regex>] [-DEXPECT_OUTPUT_REGEX=<regex>]
#         [-DEXPECT_HANG_REGEX=<regex>] -DTIMEOUT=<s>
#         -DSYMBOLS=<the kernel's ELF with debug information | - or empty: none>
#         [-DRAM_PAST_IMAGE=<KiB> -DNM=<nm>] -P run_qemu.cmake
# RAM_PAST_IMAGE appends -m <the image's end (SYMBOLS' __kernel_end) + KiB>K to the arguments.
# A boot still running after TIMEOUT seconds fails, with every CPU's backtrace (qemu_deadline.sh).
separate_arguments(qemu_args UNIX_COMMAND "${ARGS}")
if(RAM_PAST_IMAGE)
    execute_process(COMMAND ${NM} ${SYMBOLS} OUTPUT_VARIABLE symbol_table RESULT_VARIABLE nm_status)
    if(NOT nm_status EQUAL 0 OR NOT symbol_table MATCHES "([0-9a-fA-F]+) [A-Za-z] __kernel_end\n")
        message(FATAL_ERROR "FAIL: no __kernel_end in '${SYMBOLS}' (${NM} exited with ${nm_status})")
    endif()
    math(EXPR ram_kib "(0x${CMAKE_MATCH_1} + 1023) / 1024 + ${RAM_PAST_IMAGE}")
    message("qemu: -m ${ram_kib}K (the image ends at 0x${CMAKE_MATCH_1}, ${RAM_PAST_IMAGE} KiB past it)")
    list(APPEND qemu_args -m ${ram_kib}K)
endif()
if(NOT SYMBOLS)
    set(SYMBOLS -)
endif()
math(EXPR backstop "${TIMEOUT} + 45")
string(TIMESTAMP started "%s")
execute_process(
    COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/qemu_deadline.sh ${TIMEOUT} ${SYMBOLS} ${LAUNCHER}
        ${qemu_args}
    INPUT_FILE /dev/null
    OUTPUT_VARIABLE output
    ERROR_VARIABLE errors
    RESULT_VARIABLE status
    TIMEOUT ${backstop})
string(TIMESTAMP finished "%s")
math(EXPR seconds "${finished} - ${started}")
# A hang's report (qemu_deadline.sh appends it to the boot's output) comes first, where a log
# shortened to its beginning still shows it.
string(FIND "${output}" "\nqemu_deadline: " report_at)
if(status STREQUAL "124" AND report_at GREATER_EQUAL 0)
    string(SUBSTRING "${output}" ${report_at} -1 report)
    string(SUBSTRING "${output}" 0 ${report_at} boot_output)
    message("${report}\nqemu_deadline: the boot's output up to the deadline:\n${boot_output}")
else()
    message("${output}")
endif()
if(errors)
    message("qemu stderr:\n${errors}")
endif()
message("qemu: exit status ${status} after ${seconds} s (expected ${EXPECT_STATUS})")
if(EXPECT_STATUS STREQUAL "hang")
    if(NOT status STREQUAL "124")
        message(FATAL_ERROR "FAIL: expected a hang, but QEMU exited with '${status}'")
    endif()
    if(NOT output MATCHES "${EXPECT_HANG_REGEX}")
        message(FATAL_ERROR "FAIL: the hang's report does not match '${EXPECT_HANG_REGEX}'")
    endif()
    return()
endif()
if(status STREQUAL "124")
    message(FATAL_ERROR
        "FAIL: hung: no verdict within ${TIMEOUT} s (the CPUs' backtraces are at the top)")
endif()

if(EXPECT_OUTPUT_REGEX AND NOT output MATCHES "${EXPECT_OUTPUT_REGEX}")
    message(FATAL_ERROR "FAIL: output does not match '${EXPECT_OUTPUT_REGEX}'")
endif()
if(EXPECT_STATUS STREQUAL "either")
    # Success or failure, but the closing line must be the verdict that status stands for.
    string(STRIP "${output}" trimmed)
    string(REGEX MATCH "[^\n]*$" closing "${trimmed}")
    if(NOT (status STREQUAL "0" AND closing MATCHES "^verdict: PASS") AND
       NOT (status STREQUAL "1" AND closing MATCHES "^verdict: FAIL"))
        message(FATAL_ERROR "FAIL: exit status '${status}' with closing line '${closing}'")
    endif()
    return()
endif()
if(NOT status STREQUAL "${EXPECT_STATUS}")
    message(FATAL_ERROR "FAIL: QEMU exited with '${status}', expected ${EXPECT_STATUS}")
endif()
if(EXPECT_FAILURE_REGEX)
    if(NOT output MATCHES "${EXPECT_FAILURE_REGEX}")
        message(FATAL_ERROR "FAIL: output does not match '${EXPECT_FAILURE_REGEX}'")
    endif()
else()
    # The closing lines must be the runner's count, with at least one test and none failed, and
    # its verdict: "N passed, 0 failed" then "verdict: PASS (N passed, 0 failed)".
    string(STRIP "${output}" trimmed)
    string(REGEX MATCH "[^\n]*\n[^\n]*$" closing "${trimmed}")
    if(NOT closing MATCHES "^([0-9]+) passed, 0 failed\r?\nverdict: PASS \\(([0-9]+) passed, 0 failed\\)\r?$"
       OR CMAKE_MATCH_1 EQUAL 0 OR NOT CMAKE_MATCH_1 EQUAL CMAKE_MATCH_2)
        message(FATAL_ERROR "FAIL: closing lines are '${closing}', expected 'N passed, 0 failed' "
            "and 'verdict: PASS (N passed, 0 failed)'")
    endif()
endif()
