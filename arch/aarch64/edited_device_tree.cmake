# SPDX-License-Identifier: MIT
# Writes a device tree for the AArch64 QEMU tests (arch/aarch64/tests.cmake): QEMU virt's own,
# dumped with the machine arguments the tests boot with, plus either a /reserved-memory node with
# one child, no-map unless MAPPED is set (NODE and REG), or the DTS text of FRAGMENT (root nodes
# whose properties override or add to QEMU's). Usage:
#   cmake -DQEMU=<qemu-system-aarch64> -DQEMU_ARGS="<machine arguments, -m included>"
#         -DDTC=<dtc> -DOUTPUT=<file.dtb>
#         ( -DNODE=<child name, e.g. secure@44001800>
#           -DREG="<address and size, two cells each>" [-DMAPPED=ON]
#           [-DKERNEL=<the kernel's ELF> -DNM=<nm>]
#         | -DFRAGMENT=<file.dtsi> ) -P edited_device_tree.cmake
# REG = KERNEL_LAST_PAGE names the kernel image's last page (below __kernel_end in KERNEL).
separate_arguments(qemu_args UNIX_COMMAND "${QEMU_ARGS}")
if(REG STREQUAL "KERNEL_LAST_PAGE")
    execute_process(COMMAND ${NM} ${KERNEL} OUTPUT_VARIABLE symbols RESULT_VARIABLE status)
    if(NOT status EQUAL 0 OR NOT symbols MATCHES "([0-9a-fA-F]+) [A-Za-z] __kernel_end\n")
        message(FATAL_ERROR "no __kernel_end in ${KERNEL}")
    endif()
    math(EXPR last_page "0x${CMAKE_MATCH_1} - 0x1000" OUTPUT_FORMAT HEXADECIMAL)
    set(REG "0x0 ${last_page} 0x0 0x1000")
endif()
set(no_map "no-map;")
if(MAPPED)
    set(no_map "")
endif()
set(dumped ${OUTPUT}.virt.dtb)
set(source ${OUTPUT}.dts)

function(run)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_QUIET ERROR_VARIABLE errors)
    if(NOT status EQUAL 0)
        list(JOIN ARGN " " command)
        message(FATAL_ERROR "${command}: exit status ${status}\n${errors}")
    endif()
endfunction()

run(${QEMU} ${qemu_args} -machine dumpdtb=${dumped})
run(${DTC} -q -I dtb -O dts -o ${source} ${dumped})
# A second root node in the same source is merged into the first.
if(FRAGMENT)
    file(READ ${FRAGMENT} fragment)
    file(APPEND ${source} "\n${fragment}")
else()
    file(APPEND ${source} "
/ {
	reserved-memory {
		#address-cells = <2>;
		#size-cells = <2>;
		ranges;

		${NODE} {
			reg = <${REG}>;
			${no_map}
		};
	};
};
")
endif()
run(${DTC} -q -I dts -O dtb -o ${OUTPUT} ${source})
