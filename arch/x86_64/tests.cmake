# QEMU tests only the x86-64 kernel has, included at the end of tests/kernel/CMakeLists.txt (so
# bedrock_add_kernel and the launchers exist): booting through GRUB, and a stack overflow that
# must be reported through the double-fault stack.
include(${CMAKE_CURRENT_LIST_DIR}/grub.cmake)

bedrock_add_kernel(bedrock-kernel-stack-overflow
    ${CMAKE_CURRENT_LIST_DIR}/stack_overflow_test.cpp)
bedrock_qemu_launcher(run-kernel-stack-overflow
    BOOT -kernel $<TARGET_FILE:bedrock-kernel-stack-overflow>)
bedrock_add_qemu_test(x86_64.stack_overflow_is_reported LAUNCHER run-kernel-stack-overflow
    EXPECT_FAILURE "fault: double fault: stack overflow \\(boot stack guard page\\) \\(vector 8[^\n]*\nfault: access at address 0x[0-9a-f]+\n.*fault: stopping with failure")
