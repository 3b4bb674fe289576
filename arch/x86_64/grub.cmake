# Boots the x86-64 kernel the way most hobby kernels are booted: GRUB from an ISO, multiboot2.
# GRUB's own console stays on the (invisible) VGA screen, so the serial output is the kernel's.
set(grub_dir ${CMAKE_CURRENT_BINARY_DIR}/grub-iso)
set(grub_iso ${CMAKE_CURRENT_BINARY_DIR}/bedrock-grub.iso)
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/grub.cfg
    "set timeout=0\nmenuentry \"Bedrock\" {\n    multiboot2 /boot/bedrock-kernel.elf\n    boot\n}\n")
find_program(BEDROCK_GRUB_MKRESCUE grub-mkrescue REQUIRED)
add_custom_command(OUTPUT ${grub_iso}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${grub_dir}/boot/grub
    COMMAND ${CMAKE_COMMAND} -E copy $<TARGET_FILE:bedrock-kernel> ${grub_dir}/boot/bedrock-kernel.elf
    COMMAND ${CMAKE_COMMAND} -E copy ${CMAKE_CURRENT_BINARY_DIR}/grub.cfg ${grub_dir}/boot/grub/grub.cfg
    COMMAND ${BEDROCK_GRUB_MKRESCUE} -o ${grub_iso} ${grub_dir} 2>/dev/null
    DEPENDS bedrock-kernel ${CMAKE_CURRENT_BINARY_DIR}/grub.cfg
    COMMENT "Building the GRUB ISO")
add_custom_target(bedrock-grub-iso ALL DEPENDS ${grub_iso})
bedrock_qemu_launcher(run-kernel-grub BOOT -cdrom ${grub_iso} -boot d)
bedrock_add_qemu_test(x86_64.grub_multiboot2 LAUNCHER run-kernel-grub ARGS -m 1G
    EXPECT_OUTPUT "memory described by multiboot2")
