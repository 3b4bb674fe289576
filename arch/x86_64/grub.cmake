# SPDX-License-Identifier: MIT
# Boots the x86-64 kernel the way most hobby kernels are booted: GRUB from an ISO, multiboot2.
# GRUB's terminal is the serial port too, so a GRUB error (a missing file, a rejected header)
# shows in the test's output; `halt` after `boot` then powers QEMU off at once (a status the
# launcher reports as "not a kernel exit") instead of waiting for a key until the timeout. GRUB's
# few lines come before the kernel's, so the closing line is still the test runner's.
find_program(BEDROCK_GRUB_MKRESCUE grub-mkrescue REQUIRED)
# bedrock_grub_launcher(<launcher> <iso name> [<GRUB commands before multiboot2>...]): an ISO
# whose one menu entry runs the commands, then boots the kernel, and a launcher that boots it.
function(bedrock_grub_launcher launcher name)
    set(grub_dir ${CMAKE_CURRENT_BINARY_DIR}/${name})
    set(grub_iso ${CMAKE_CURRENT_BINARY_DIR}/${name}.iso)
    set(grub_log ${CMAKE_CURRENT_BINARY_DIR}/${name}-mkrescue.log)
    set(grub_cfg ${CMAKE_CURRENT_BINARY_DIR}/${name}.cfg)
    list(TRANSFORM ARGN PREPEND "    ")
    list(JOIN ARGN "\n" commands)
    if(commands)
        string(APPEND commands "\n")
    endif()
    file(WRITE ${grub_cfg}
"serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=0
menuentry \"Bedrock\" {
${commands}    multiboot2 /boot/bedrock-kernel.elf
    boot
    halt
}
")
    # grub-mkrescue (xorriso) reports progress on stderr even when it succeeds: keep it in a log
    # and show it only when the ISO cannot be built.
    add_custom_command(OUTPUT ${grub_iso}
        COMMAND ${CMAKE_COMMAND} -E make_directory ${grub_dir}/boot/grub
        COMMAND ${CMAKE_COMMAND} -E copy $<TARGET_FILE:bedrock-kernel> ${grub_dir}/boot/bedrock-kernel.elf
        COMMAND ${CMAKE_COMMAND} -E copy ${grub_cfg} ${grub_dir}/boot/grub/grub.cfg
        COMMAND sh -c "'${BEDROCK_GRUB_MKRESCUE}' -o '${grub_iso}' '${grub_dir}' 2>'${grub_log}' || { cat '${grub_log}' >&2; exit 1; }"
        DEPENDS bedrock-kernel ${grub_cfg}
        COMMENT "Building the GRUB ISO ${name}"
        VERBATIM)
    add_custom_target(${name} ALL DEPENDS ${grub_iso})
    bedrock_qemu_launcher(${launcher} SYMBOLS $<TARGET_FILE:bedrock-kernel>
        BOOT -cdrom ${grub_iso} -boot d)
endfunction()
bedrock_grub_launcher(run-kernel-grub bedrock-grub-iso)
bedrock_add_qemu_test(x86_64.grub_multiboot2 LAUNCHER run-kernel-grub ARGS -m 1G
    EXPECT_OUTPUT "memory described by multiboot2")
# GRUB's `cutmem` takes a page inside the image out of the map it passes, but GRUB still loads
# the image there: the kernel names the page instead of leaving it out of its map and faulting
# there (a triple fault with the boot stack's pages cut, nothing printed).
bedrock_grub_launcher(run-kernel-grub-cut-image bedrock-grub-cut-image-iso "cutmem 0x140000 0x141000")
bedrock_add_qemu_test(x86_64.grub_image_outside_the_ram_map_is_named
    LAUNCHER run-kernel-grub-cut-image ARGS -m 256M TIMEOUT 30
    EXPECT_FAILURE "memory map: the kernel image \\[0x100000 - 0x[0-9a-f]+\\] is not all in the RAM the firmware lists \\(0x140000 is not\\); cannot boot")
