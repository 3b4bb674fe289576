# SPDX-License-Identifier: MIT
# Writes a device tree for the no-map QEMU tests (arch/aarch64/tests.cmake): QEMU virt's own,
# dumped with the machine arguments the tests boot with, plus a /reserved-memory node with one
# no-map child. Usage:
#   cmake -DQEMU=<qemu-system-aarch64> -DQEMU_ARGS="<machine arguments, -m included>"
#         -DDTC=<dtc> -DNODE=<child name, e.g. secure@44001800>
#         -DREG="<address and size, two cells each>" -DOUTPUT=<file.dtb> -P no_map_device_tree.cmake
separate_arguments(qemu_args UNIX_COMMAND "${QEMU_ARGS}")
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
file(APPEND ${source} "
/ {
	reserved-memory {
		#address-cells = <2>;
		#size-cells = <2>;
		ranges;

		${NODE} {
			reg = <${REG}>;
			no-map;
		};
	};
};
")
run(${DTC} -q -I dts -O dtb -o ${OUTPUT} ${source})
