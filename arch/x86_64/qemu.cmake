# SPDX-License-Identifier: MIT
# How the x86-64 kernel runs under QEMU (see cmake/qemu.cmake for the variables' meaning).
# The pc machine: the most common one, and with -m above 3.5 GiB it puts RAM above 4 GiB.
set(BEDROCK_QEMU_PROGRAM qemu-system-x86_64)
set(BEDROCK_QEMU_ARGS -M pc -display none -serial stdio -monitor none -no-reboot
    -device isa-debug-exit,iobase=0xf4,iosize=0x04)
set(BEDROCK_QEMU_DEFAULT_MEMORY 128M)
set(BEDROCK_QEMU_TEST_MEMORY 8M 128M 1G 6G)
# isa-debug-exit: v -> status (v << 1) | 1; arch/x86_64/console.cpp writes 16 or 17.
set(BEDROCK_QEMU_SUCCESS_STATUS 33)
set(BEDROCK_QEMU_FAILURE_STATUS 35)
