# SPDX-License-Identifier: MIT
# QEMU tests only the AArch64 kernel has, included at the end of tests/kernel/CMakeLists.txt (so
# the kernel targets and launchers exist): the CPU layer's own in-kernel tests, RAM that ends
# inside the kernel image (named by boot.S), device trees with a no-map reserved range or other
# edits, and SMP boots -
# 2 and 4 CPUs on the default GICv2, GICv3, and entry at EL2 (virtualization=on: the boot CPU
# and the secondaries drop to EL1, PSCI through smc). Each must bring every CPU online and pass
# the SMP and interrupt tests on all of them.
target_sources(bedrock_kernel_tests PRIVATE ${CMAKE_CURRENT_LIST_DIR}/cpu_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/no_map_test.cpp)

# RAM that ends inside the image (RAM to 0x40271000, the image from 0x40200000 to about
# 0x402ac000): boot.S reads the image's last word before it writes anything, and names the
# machine instead of hanging in an abort with no vectors.
bedrock_add_qemu_test(aarch64.ram_ending_inside_the_image_is_named LAUNCHER run-kernel
    ARGS -m 2500K TIMEOUT 30
    EXPECT_FAILURE "bedrock: RAM ends below the end of the kernel image at 0x[0-9a-f]+; cannot boot")

# QEMU virt's device tree with a /reserved-memory child marked no-map (or, with MAPPED after the
# arguments, not), `reg` = `no_map_reg` (KERNEL_LAST_PAGE: the kernel image's last page, so the
# tree is written again whenever the kernel is), written to `dtb` at build time
# (edited_device_tree.cmake), for booting with -dtb.
find_program(BEDROCK_DTC dtc REQUIRED)
function(bedrock_no_map_device_tree dtb node no_map_reg)
    cmake_parse_arguments(PARSE_ARGV 3 ARG "MAPPED" "" "")
    list(JOIN BEDROCK_QEMU_ARGS " " machine)
    set(kernel_arguments)
    set(kernel_dependency)
    if(no_map_reg STREQUAL "KERNEL_LAST_PAGE")
        set(kernel_arguments -DKERNEL=$<TARGET_FILE:bedrock-kernel> -DNM=${CMAKE_NM})
        set(kernel_dependency bedrock-kernel)
    endif()
    add_custom_command(OUTPUT ${dtb}
        COMMAND ${CMAKE_COMMAND} -DQEMU=${BEDROCK_QEMU_PROGRAM}
            "-DQEMU_ARGS=${machine} -m ${BEDROCK_QEMU_DEFAULT_MEMORY}" -DDTC=${BEDROCK_DTC}
            -DNODE=${node} "-DREG=${no_map_reg}" -DMAPPED=${ARG_MAPPED} -DOUTPUT=${dtb}
            ${kernel_arguments}
            -P ${CMAKE_CURRENT_LIST_DIR}/edited_device_tree.cmake
        DEPENDS ${CMAKE_CURRENT_LIST_DIR}/edited_device_tree.cmake ${kernel_dependency}
        VERBATIM)
endfunction()
# QEMU virt's device tree for the machine arguments `machine_args` (after the default ones; -m
# is the default memory) with the DTS fragment device_trees/`name`.dtsi merged in, written to
# ${CMAKE_CURRENT_BINARY_DIR}/`name`.dtb at build time and built with the kernel.
function(bedrock_edited_device_tree name)
    list(JOIN BEDROCK_QEMU_ARGS " " machine)
    list(JOIN ARGN " " machine_args)
    set(fragment ${CMAKE_CURRENT_LIST_DIR}/device_trees/${name}.dtsi)
    set(dtb ${CMAKE_CURRENT_BINARY_DIR}/${name}.dtb)
    add_custom_command(OUTPUT ${dtb}
        COMMAND ${CMAKE_COMMAND} -DQEMU=${BEDROCK_QEMU_PROGRAM}
            "-DQEMU_ARGS=${machine} ${machine_args} -m ${BEDROCK_QEMU_DEFAULT_MEMORY}"
            -DDTC=${BEDROCK_DTC} -DFRAGMENT=${fragment} -DOUTPUT=${dtb}
            -P ${CMAKE_CURRENT_LIST_DIR}/edited_device_tree.cmake
        DEPENDS ${CMAKE_CURRENT_LIST_DIR}/edited_device_tree.cmake ${fragment}
        VERBATIM)
    add_custom_target(bedrock-device-tree-${name} ALL DEPENDS ${dtb})
endfunction()
set(no_map_dtb ${CMAKE_CURRENT_BINARY_DIR}/no-map.dtb)
set(no_map_image_dtb ${CMAKE_CURRENT_BINARY_DIR}/no-map-over-the-image.dtb)
set(no_map_device_dtb ${CMAKE_CURRENT_BINARY_DIR}/no-map-in-the-device-window.dtb)
set(reserved_image_dtb ${CMAKE_CURRENT_BINARY_DIR}/reserved-over-the-image.dtb)
bedrock_no_map_device_tree(${no_map_dtb} secure@44001800 "0x0 0x44001800 0x0 0x3000")
bedrock_no_map_device_tree(${no_map_image_dtb} secure@40200000 "0x0 0x40200000 0x0 0x1000")
bedrock_no_map_device_tree(${no_map_device_dtb} secure@e000000 "0x0 0x0e000000 0x0 0x1000")
bedrock_no_map_device_tree(${reserved_image_dtb} firmware@0 KERNEL_LAST_PAGE MAPPED)
add_custom_target(bedrock-no-map-device-trees ALL
    DEPENDS ${no_map_dtb} ${no_map_image_dtb} ${no_map_device_dtb} ${reserved_image_dtb})

# A no-map range with a partial page at each end (pages 0x44001000-0x44004fff): reserved, listed
# as never mapped, and none of its pages translates (the in-kernel no-map test).
bedrock_add_qemu_test(aarch64.no_map_range_is_not_mapped LAUNCHER run-kernel
    ARGS -dtb ${no_map_dtb}
    EXPECT_OUTPUT "reserved and never mapped \\(1 ranges\\):\n  \\[0x0000000044001800 - 0x00000000440047ff\\].*test aarch64_no_map_ranges_are_not_mapped ok")
# The same in virt's device window (0x08000000 - 0x0fffffff, mapped as Device), where secure RAM
# may lie: it was mapped with the window.
bedrock_add_qemu_test(aarch64.no_map_range_in_the_device_window_is_not_mapped LAUNCHER run-kernel
    ARGS -dtb ${no_map_device_dtb}
    EXPECT_OUTPUT "reserved and never mapped \\(1 ranges\\):\n  \\[0x000000000e000000 - 0x000000000e000fff\\].*test aarch64_no_map_ranges_are_not_mapped ok")
# A no-map range over the kernel image: the kernel cannot run unmapped, and says so.
bedrock_add_qemu_test(aarch64.no_map_over_the_kernel_image_is_refused LAUNCHER run-kernel
    ARGS -dtb ${no_map_image_dtb} TIMEOUT 30
    EXPECT_FAILURE "memory map: the kernel image \\[0x40200000 - 0x[0-9a-f]+\\] shares pages with \\[0x40200000 - 0x40200fff\\], which the firmware forbids mapping \\(no-map\\); cannot boot")

# A reserved range over the image's last page (its .bss), not no-map: the firmware's data there
# is not the kernel's to overwrite (it was merged into the image's own reservation, silently).
bedrock_add_qemu_test(aarch64.reserved_over_the_kernel_image_is_refused LAUNCHER run-kernel
    ARGS -dtb ${reserved_image_dtb} TIMEOUT 30
    EXPECT_FAILURE "memory map: the kernel image's writable part \\[0x[0-9a-f]+ - 0x[0-9a-f]+\\] shares pages with \\[0x[0-9a-f]+ - 0x[0-9a-f]+\\], which the firmware or boot loader reserved; cannot boot")

# A /reserved-memory without #address-cells and #size-cells under a root of 2 and 2: its child
# is read with the root's cells (it was read with the defaults 2 and 1, as a range of 0 bytes,
# and the MiB was usable RAM, mapped). And a reg that is not a whole number of entries stops the
# boot, naming its node (its last, partial entry was dropped unread).
bedrock_edited_device_tree(reserved_memory_without_cells)
bedrock_add_qemu_test(aarch64.reserved_memory_without_cells_uses_the_roots LAUNCHER run-kernel
    ARGS -dtb ${CMAKE_CURRENT_BINARY_DIR}/reserved_memory_without_cells.dtb
    EXPECT_OUTPUT "reserved and never mapped \\(1 ranges\\):\n  \\[0x0000000044000000 - 0x00000000440fffff\\].*test aarch64_no_map_ranges_are_not_mapped ok")
bedrock_edited_device_tree(reserved_memory_reg_with_a_partial_entry)
bedrock_add_qemu_test(aarch64.reg_with_a_partial_entry_is_refused LAUNCHER run-kernel
    ARGS -dtb ${CMAKE_CURRENT_BINARY_DIR}/reserved_memory_reg_with_a_partial_entry.dtb
    TIMEOUT 30
    EXPECT_FAILURE "device tree: `reg` is not a whole number of \\(address, size\\) entries of its parent's #address-cells and #size-cells; cannot boot; node firmware@44000000")

# RAM the identity map cannot reach (a RAM node at 2^64 - 256 MiB): left out, named (it was kept,
# `highest address 0xffffffffffffffff`, and the boot died in a data abort in memset).
bedrock_edited_device_tree(ram_beyond_the_identity_map)
bedrock_add_qemu_test(aarch64.ram_beyond_the_identity_map_is_left_out LAUNCHER run-kernel
    ARGS -dtb ${CMAKE_CURRENT_BINARY_DIR}/ram_beyond_the_identity_map.dtb
    EXPECT_OUTPUT "memory map: RAM \\[0xfffffffff0000000 - 0xffffffffffffffff\\] reaches past 0x[0-9a-f]+, the last address the identity map can reach; left out\n.*highest address 0x47ffffff\n")
# RAM listed over device memory the kernel maps is cut out, named: over virt's device window
# (the boot died in a data abort), and around a GICv3 redistributor region listed inside RAM
# (mapping it twice panicked: "0x44000000 is already mapped"), whose CPUs, finding no
# redistributor there, are left out.
bedrock_edited_device_tree(ram_over_the_device_window)
bedrock_add_qemu_test(aarch64.ram_over_the_device_window_is_left_out LAUNCHER run-kernel
    ARGS -dtb ${CMAKE_CURRENT_BINARY_DIR}/ram_over_the_device_window.dtb
    EXPECT_OUTPUT "memory map: RAM \\[0x8000000 - 0xfffffff\\] overlaps device memory \\[0x8000000 - 0xfffffff\\]; left out\n.*highest address 0x47ffffff\n")
bedrock_edited_device_tree(gicv3_redistributor_region_in_ram -M virt,gic-version=3 -smp 4)
bedrock_add_qemu_test(aarch64.gicv3.redistributor_region_in_ram_is_cut_out_of_ram
    LAUNCHER run-kernel ARGS -M virt,gic-version=3 -smp 4
        -dtb ${CMAKE_CURRENT_BINARY_DIR}/gicv3_redistributor_region_in_ram.dtb
    EXPECT_OUTPUT "memory map: RAM \\[0x40000000 - 0x47ffffff\\] overlaps device memory \\[0x44000000 - 0x4403ffff\\]; that part left out\n.*pfa: region \\[0x[0-9a-f]+ - 0x0000000043ffffff\\].*smp: 2 CPUs online")

bedrock_add_qemu_test(aarch64.smp.2 LAUNCHER run-kernel ARGS -m 128M -smp 2
    EXPECT_OUTPUT "smp: 2 CPUs online")
bedrock_add_qemu_test(aarch64.smp.4 LAUNCHER run-kernel ARGS -m 256M -smp 4
    EXPECT_OUTPUT "smp: 4 CPUs online")
# Under -icount one host thread runs every CPU in turn: a CPU that spins without the spin-wait
# hint, or a watchdog that never sleeps, holds the others off (the interrupt test's workers
# took no ticks; the cross-CPU trap test spun for ever).
bedrock_add_qemu_test(aarch64.smp.4.icount LAUNCHER run-kernel
    ARGS -icount shift=0 -m 128M -smp 4 EXPECT_OUTPUT "smp: 4 CPUs online")
# With shift=7 (128 ns a guest instruction) each CPU's turn began with a 2000 Hz tick that took
# all of it: the interrupt test's workers must slow their timers down to allocate at all.
bedrock_add_qemu_test(aarch64.smp.4.icount_shift_7 LAUNCHER run-kernel
    ARGS -icount shift=7 -m 128M -smp 4 EXPECT_OUTPUT "smp: 4 CPUs online")
bedrock_add_qemu_test(aarch64.smp.2.gicv3 LAUNCHER run-kernel ARGS -M virt,gic-version=3 -m 128M
    -smp 2 EXPECT_OUTPUT "smp: 2 CPUs online")
# Eight CPUs: while the trap tests split a 2 MiB block to hide a page (break-before-make), the
# other CPUs touch memory in that block and take translation faults, which must be retried, not
# reported; their stacks must never be in such a block.
bedrock_add_qemu_test(aarch64.smp.8.gicv3 LAUNCHER run-kernel ARGS -M virt,gic-version=3 -m 512M
    -smp 8 EXPECT_OUTPUT "smp: 8 CPUs online")
# GICv3 redistributors in more than one region (#redistributor-regions; QEMU virt puts a second
# one at 256 GiB when the first is full): CPUs 2-3 are in the second of two regions, and every
# region is searched (only the first was, and CPU 2 panicked). With only the first region listed,
# CPUs 2-3 are named and left out before they start; the run passes with the other two.
bedrock_edited_device_tree(gicv3_two_redistributor_regions -M virt,gic-version=3 -smp 4)
bedrock_add_qemu_test(aarch64.gicv3.two_redistributor_regions LAUNCHER run-kernel
    ARGS -M virt,gic-version=3 -smp 4
        -dtb ${CMAKE_CURRENT_BINARY_DIR}/gicv3_two_redistributor_regions.dtb
    EXPECT_OUTPUT "smp: 4 CPUs online")
bedrock_edited_device_tree(gicv3_first_redistributor_region_only -M virt,gic-version=3 -smp 4)
bedrock_add_qemu_test(aarch64.gicv3.cpus_without_a_redistributor_are_left_out
    LAUNCHER run-kernel ARGS -M virt,gic-version=3 -smp 4
        -dtb ${CMAKE_CURRENT_BINARY_DIR}/gicv3_first_redistributor_region_only.dtb
    EXPECT_OUTPUT "gic: CPU 0x2 has no GICv3 redistributor in the regions the device tree lists; left out\n.*gic: CPU 0x3 has no GICv3 redistributor in the regions the device tree lists; left out\n.*smp: 2 CPUs online")
# QEMU's own case: GICv4's redistributors take 256 KiB each, so its first region holds 61 CPUs
# and the 62nd's lies in the second region at 256 GiB, which the final map must map as Device
# memory (CPU 0x30d panicked). And six CPUs more than the kernel's records (BEDROCK_MAX_CPUS, 64
# by default: 70 CPUs; 62 at least), named and left off. The CPUs started run every test: about
# 25 s on two host cores.
math(EXPR cpus_described "${BEDROCK_MAX_CPUS} + 6")
if(cpus_described LESS 62)
    set(cpus_described 62)
endif()
math(EXPR cpus_left_off "${cpus_described} - ${BEDROCK_MAX_CPUS}")
bedrock_add_qemu_test(aarch64.gicv4.two_redistributor_regions_and_cpus_beyond_the_kernel_s_records
    LAUNCHER run-kernel
    ARGS -M virt,gic-version=4,virtualization=on -cpu max -smp ${cpus_described} TIMEOUT 400
    EXPECT_OUTPUT "smp: ${cpus_left_off} more CPUs described than the kernel supports \\(${BEDROCK_MAX_CPUS}\\); left off\nsmp: ${BEDROCK_MAX_CPUS} CPUs online")
bedrock_add_qemu_test(aarch64.smp.2.el2 LAUNCHER run-kernel
    ARGS -M virt,virtualization=on,gic-version=3 -m 128M -smp 2
    EXPECT_OUTPUT "smp: 2 CPUs online")

# Entered at EL3 with no firmware (virt,secure=on: every CPU starts at the ELF entry and there is
# no PSCI): CPU 0 alone boots, in Secure EL1, its GICv3 interrupts in Secure group 1.
bedrock_add_qemu_test(aarch64.secure_el3 LAUNCHER run-kernel
    ARGS -M virt,secure=on,gic-version=3 -m 128M -smp 2 TIMEOUT 60
    EXPECT_OUTPUT "entered at EL3: running in Secure EL1.*smp: 1 CPUs online")

# A fault on a secondary CPU (CPU 1 of 4) is reported with its CPU index and ends the run.
bedrock_add_kernel(bedrock-kernel-secondary-fault
    ${PROJECT_SOURCE_DIR}/tests/kernel/secondary_fault_test.cpp)
bedrock_qemu_launcher(run-kernel-secondary-fault
    SYMBOLS $<TARGET_FILE:bedrock-kernel-secondary-fault>
    BOOT -kernel $<TARGET_FILE:bedrock-kernel-secondary-fault>)
bedrock_add_qemu_test(aarch64.secondary_fault_is_reported LAUNCHER run-kernel-secondary-fault
    ARGS -smp 4
    EXPECT_FAILURE "fault: [^\n]* on cpu 1\nfault: read access at address 0x0000400000000000.*fault: stopping with failure")
