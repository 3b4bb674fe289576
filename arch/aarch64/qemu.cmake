# SPDX-License-Identifier: MIT
# How the AArch64 kernel runs under QEMU (see cmake/qemu.cmake for the variables' meaning).
# cortex-a57 (ARMv8.0, no LSE atomics): the default virt CPU is 32-bit.
set(BEDROCK_QEMU_PROGRAM qemu-system-aarch64)
set(BEDROCK_QEMU_ARGS -M virt -cpu cortex-a57 -display none -serial stdio -monitor none
    -no-reboot -semihosting-config enable=on,target=native)
set(BEDROCK_QEMU_DEFAULT_MEMORY 128M)
set(BEDROCK_QEMU_TEST_MEMORY 8M 128M 1G 4G)
# Semihosting SYS_EXIT codes from arch/aarch64/console.cpp.
set(BEDROCK_QEMU_SUCCESS_STATUS 0)
set(BEDROCK_QEMU_FAILURE_STATUS 3)
