# SPDX-License-Identifier: MIT
# Boots the x86-64 kernel the way most hobby kernels are booted: GRUB from an ISO, multiboot2.
# GRUB's terminal is the serial port too, so a GRUB error (a missing file, a rejected header)
# shows in the test's output; `halt` after `boot` then powers QEMU off at once (a status the
# launcher reports as "not a kernel exit") instead of waiting for a key until the timeout. GRUB's
# few lines come before the kernel's, so the closing line is still the test runner's.
set(grub_dir ${CMAKE_CURRENT_BINARY_DIR}/grub-iso)
set(grub_iso ${CMAKE_CURRENT_BINARY_DIR}/bedrock-grub.iso)
set(grub_log ${CMAKE_CURRENT_BINARY_DIR}/grub-mkrescue.log)
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/grub.cfg
"serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=0
menuentry \"Bedrock\" {
    multiboot2 /boot/bedrock-kernel.elf
    boot
    halt
}
")
find_program(BEDROCK_GRUB_MKRESCUE grub-mkrescue REQUIRED)
# grub-mkrescue (xorriso) reports progress on stderr even when it succeeds: keep it in a log and
# show it only when the ISO cannot be built.
add_custom_command(OUTPUT ${grub_iso}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${grub_dir}/boot/grub
    COMMAND ${CMAKE_COMMAND} -E copy $<TARGET_FILE:bedrock-kernel> ${grub_dir}/boot/bedrock-kernel.elf
    COMMAND ${CMAKE_COMMAND} -E copy ${CMAKE_CURRENT_BINARY_DIR}/grub.cfg ${grub_dir}/boot/grub/grub.cfg
    COMMAND sh -c "'${BEDROCK_GRUB_MKRESCUE}' -o '${grub_iso}' '${grub_dir}' 2>'${grub_log}' || { cat '${grub_log}' >&2; exit 1; }"
    DEPENDS bedrock-kernel ${CMAKE_CURRENT_BINARY_DIR}/grub.cfg
    COMMENT "Building the GRUB ISO"
    VERBATIM)
add_custom_target(bedrock-grub-iso ALL DEPENDS ${grub_iso})
bedrock_qemu_launcher(run-kernel-grub SYMBOLS $<TARGET_FILE:bedrock-kernel>
    BOOT -cdrom ${grub_iso} -boot d)
bedrock_add_qemu_test(x86_64.grub_multiboot2 LAUNCHER run-kernel-grub ARGS -m 1G
    EXPECT_OUTPUT "memory described by multiboot2")
