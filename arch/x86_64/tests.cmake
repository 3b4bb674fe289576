# SPDX-License-Identifier: MIT
# QEMU tests only the x86-64 kernel has, included at the end of tests/kernel/CMakeLists.txt (so
# bedrock_add_kernel and the launchers exist): booting through GRUB, a stack overflow that
# must be reported through the double-fault stack, machines the kernel cannot run on (named in
# one line by boot.S), a test cut short by operator new out of memory, SMP boots and the boot
# benchmark.
include(${CMAKE_CURRENT_LIST_DIR}/grub.cmake)

# Machines the kernel cannot run on: boot.S names what is missing and exits with failure
# before it writes any memory (a hang or a triple fault fails: the timeout, QEMU's own status).
# A 32-bit CPU (QEMU still enters the PVH entry on it):
bedrock_add_qemu_test(x86_64.no_long_mode_is_named LAUNCHER run-kernel ARGS -cpu qemu32
    TIMEOUT 30 EXPECT_FAILURE "bedrock: this CPU has no long mode \\(x86-64\\); cannot boot")
# A CPU without SSE2, which x86-64 requires but QEMU lets one leave out: the fences are mfence.
bedrock_add_qemu_test(x86_64.no_sse2_is_named LAUNCHER run-kernel ARGS -cpu qemu64,-sse2
    TIMEOUT 30 EXPECT_FAILURE "bedrock: this CPU has no SSE2 \\(mfence\\); cannot boot")
# Nor without CMOV, which the compiler uses throughout (the exception handler included: a CPU
# without it faulted at its first cmov and again in the handler, printing nothing, for ever).
bedrock_add_qemu_test(x86_64.no_cmov_is_named LAUNCHER run-kernel ARGS -cpu qemu64,-cmov
    TIMEOUT 30 EXPECT_FAILURE "bedrock: this CPU has no CMOV \\(conditional moves")
# A command line over 4 KiB: QEMU's PVH option ROM copies it into a 4 KiB buffer unchecked and
# overwrites the start_info after it; the kernel's refusal says so.
string(REPEAT "p" 4200 overlong_word)
bedrock_add_qemu_test(x86_64.boot.overlong_pvh_command_line_is_named LAUNCHER run-kernel
    ARGS -m 64M -append "\"${overlong_word}\"" TIMEOUT 30
    EXPECT_FAILURE "bad magic number \\(under QEMU: a command line over 4 KiB overwrites it")
# RAM from 1 MiB to 0x12c000, the image to about 0x1ba000: its first pages (boot.S) are RAM,
# its .bss is not.
bedrock_add_qemu_test(x86_64.ram_ending_inside_the_image_is_named LAUNCHER run-kernel
    ARGS -m 1200K TIMEOUT 30
    EXPECT_FAILURE "bedrock: RAM ends at 0x0012c000, below the end of the kernel image at 0x[0-9a-f]+; cannot boot")
# A 1 MiB initrd in 2400 KiB: QEMU puts it below the top of low RAM, over the image's read-only
# data and data (loaded after the image); boot.S names the overlap before it uses either.
bedrock_add_qemu_test(x86_64.initrd_over_the_image_is_named LAUNCHER run-kernel
    ARGS -m 2400K -initrd ${CMAKE_CURRENT_BINARY_DIR}/initrd-1M.bin TIMEOUT 30
    EXPECT_FAILURE "bedrock: a boot module \\(initrd\\) at 0x[0-9a-f]+ overlaps the kernel image at 0x00100000 - 0x[0-9a-f]+; cannot boot")
# A machine type before 4.0 (no PVH loader) loads the kernel as an old Linux zImage and enters
# boot.S's linux_real_mode_entry in real mode, which names it (run-kernel boots the image without
# debug information, which that loader can place: tests/kernel/CMakeLists.txt).
# pc-q35-3.1 loads through fw_cfg DMA; pc-i440fx-2.4's older option ROM writes the setup
# header's initrd fields, inside the code's first bytes until it jumped over the header.
foreach(machine pc-q35-3.1 pc-i440fx-2.4)
    bedrock_add_qemu_test(x86_64.machine_before_4_0_is_named.${machine}
        LAUNCHER run-kernel ARGS -M ${machine} TIMEOUT 30
        EXPECT_FAILURE "bedrock: loaded as a Linux kernel in real mode, not through PVH \\(QEMU machine types before 4.0 have no PVH loader: use pc or q35 4.0 or later\\); cannot boot")
endforeach()
# About 2 MiB: a few pages usable past the image (RAM_PAST_IMAGE covers the page tables, 88 KiB,
# the firmware's tables at the top of RAM, 124 KiB, and 40 KiB usable, of which the page frame
# allocator's metadata needs 20 KiB and the default heap 8 KiB), a few pages free when the tests
# start; a throwing operator new that finds no memory ends its test (failed, the reason named),
# not the run, which ends with its verdict.
bedrock_add_qemu_test(x86_64.boot.2M_operator_new_out_of_memory_ends_one_test LAUNCHER run-kernel
    RAM_PAST_IMAGE 252 TIMEOUT 60 EITHER_VERDICT
    EXPECT_OUTPUT "operator new: out of memory; the test ends here\r?\ntest heap_operator_new_and_delete_forms FAILED")

bedrock_add_kernel(bedrock-kernel-stack-overflow
    ${CMAKE_CURRENT_LIST_DIR}/stack_overflow_test.cpp)
bedrock_qemu_launcher(run-kernel-stack-overflow
    SYMBOLS $<TARGET_FILE:bedrock-kernel-stack-overflow>
    BOOT -kernel $<TARGET_FILE:bedrock-kernel-stack-overflow>)
bedrock_add_qemu_test(x86_64.stack_overflow_is_reported LAUNCHER run-kernel-stack-overflow
    EXPECT_FAILURE "fault: double fault: stack overflow \\(boot stack guard page\\) \\(vector 8[^\n]*\nfault: access at address 0x[0-9a-f]+\n.*fault: stopping with failure")

# SMP: every CPU the ACPI MADT lists is started (the portable SMP stress and interrupt tests
# then run on all of them), on the pc machine and on q35, with two and with four CPUs; and
# through GRUB, where the RSDP comes from the multiboot2 ACPI tag.
foreach(machine pc q35)
    foreach(cpus 2 4)
        bedrock_add_qemu_test(x86_64.smp.${machine}.${cpus} LAUNCHER run-kernel
            ARGS -M ${machine} -m 256M -smp ${cpus}
            EXPECT_OUTPUT "acpi: RSDP at 0x[0-9a-f]+, MADT: ${cpus} CPUs\n.*smp: ${cpus} CPUs online")
    endforeach()
endforeach()
# Under -icount shift=7 (128 ns a guest instruction) QEMU runs the CPUs in turn and each turn
# began with a 2000 Hz tick that took all of it: the interrupt test's workers must slow their
# timers down to allocate at all.
bedrock_add_qemu_test(x86_64.smp.pc.4.icount_shift_7 LAUNCHER run-kernel
    ARGS -icount shift=7 -m 256M -smp 4 EXPECT_OUTPUT "smp: 4 CPUs online")
# Many more CPUs than the host has cores, in little memory (8 MiB per CPU): every CPU must still
# take its timer ticks in the interrupt test, and the SMP stress must fit its blocks in memory.
# The machine has no PIT: the TSC is measured against the ACPI PM timer, and every time-out
# (the CPUs' check-in, the INIT and STARTUP delays, the interrupt test's) must hold by it.
bedrock_add_qemu_test(x86_64.smp.pc.16.no_pit LAUNCHER run-kernel
    ARGS -M pc,pit=off -m 128M -smp 16
    EXPECT_OUTPUT "MADT: 16 CPUs\nclock: TSC [0-9]+ MHz, measured against the ACPI PM timer \\(no PIT counts\\)\n.*smp: 16 CPUs online")
# Six CPUs more than the kernel's CPU records (BEDROCK_MAX_CPUS, 64 by default: 70 CPUs in 128
# MiB): the MADT's first entries are started, the other six counted and named, and every CPU
# keeps its CPU page lists and its share of the SMP stress in that little memory. The pc machine
# takes at most 255 CPUs.
math(EXPR cpus_described "${BEDROCK_MAX_CPUS} + 6")
if(cpus_described LESS_EQUAL 255)
    bedrock_add_qemu_test(x86_64.smp.pc.6_cpus_beyond_the_kernel_s_records LAUNCHER run-kernel
        ARGS -m 128M -smp ${cpus_described} TIMEOUT 120
        EXPECT_OUTPUT "MADT: ${cpus_described} CPUs\n.*smp: 6 more CPUs described than the kernel supports \\(${BEDROCK_MAX_CPUS}\\); left off\nsmp: ${BEDROCK_MAX_CPUS} CPUs online")
endif()
# Sparse APIC ids and MADT slots the OS must not use: -smp 1 with maxcpus=240 makes QEMU list 240
# entries, only the boot CPU's enabled; two CPUs plugged at start-up take ids 0x73 and 0xef
# (an APIC id is socket << 3 | core here). Both are started and run the SMP tests; the 237
# disabled entries are counted and named, not started.
bedrock_add_qemu_test(x86_64.smp.sparse_apic_ids_and_disabled_slots LAUNCHER run-kernel
    ARGS -m 128M -smp 1,sockets=30,cores=8,threads=1,maxcpus=240
    -device qemu64-x86_64-cpu,socket-id=14,core-id=3,thread-id=0
    -device qemu64-x86_64-cpu,socket-id=29,core-id=7,thread-id=0
    EXPECT_OUTPUT "MADT: 3 CPUs\nacpi: 237 more CPUs disabled \\(neither enabled nor online-capable\\): not started\n.*smp: 3 CPUs online")
# A CPU without a local APIC (CPUID): the kernel runs on the boot CPU alone, with no timer,
# and never maps or writes the APIC's page (physical page 0 stays unmapped).
bedrock_add_qemu_test(x86_64.no_local_apic LAUNCHER run-kernel ARGS -cpu qemu64,-apic -m 128M
    EXPECT_OUTPUT "smp: no local APIC \\(CPUID\\); starting the boot CPU only\n.*smp: 1 CPUs online")
bedrock_add_qemu_test(x86_64.smp.grub_multiboot2.2 LAUNCHER run-kernel-grub ARGS -m 256M -smp 2
    EXPECT_OUTPUT "memory described by multiboot2.*smp: 2 CPUs online")
# Without ACPI (-M pc,acpi=off: no RSDP) the CPUs come from the MP table SeaBIOS builds, found by
# the BIOS-area search, and all come online. SeaBIOS lists only the first logical CPU of each
# package, so each CPU is its own socket here; the slots up to maxcpus that hold no CPU are listed
# disabled, named and not started. Through GRUB too (no ACPI tag, the same search). q35 has no
# such test: with acpi=off SeaBIOS still builds ACPI tables there, and the MADT is read.
bedrock_add_qemu_test(x86_64.smp.mp_table.pc.4 LAUNCHER run-kernel
    ARGS -M pc,acpi=off -m 256M -smp 4,sockets=4
    EXPECT_OUTPUT "acpi: no valid ACPI RSDP; MP table at 0x[0-9a-f]+: 4 CPUs\n.*smp: 4 CPUs online")
bedrock_add_qemu_test(x86_64.smp.mp_table.disabled_slots LAUNCHER run-kernel
    ARGS -M pc,acpi=off -m 256M -smp 2,sockets=4,maxcpus=4
    EXPECT_OUTPUT "acpi: no valid ACPI RSDP; MP table at 0x[0-9a-f]+: 2 CPUs\nmp table: 2 more CPUs disabled: not started\n.*smp: 2 CPUs online")
bedrock_add_qemu_test(x86_64.smp.mp_table.grub_multiboot2.2 LAUNCHER run-kernel-grub
    ARGS -M pc,acpi=off -m 256M -smp 2,sockets=2
    EXPECT_OUTPUT "acpi: no valid ACPI RSDP; MP table at 0x[0-9a-f]+: 2 CPUs\nclock: [^\n]*\n[^\n]*memory described by multiboot2.*smp: 2 CPUs online")
# QEMU's microvm: no BIOS, no PCI, no port 0x61; the kernel enters through PVH from qboot.
# With ACPI its MADT lists every CPU, all started. Without ACPI (no RSDP, no MP table) the other
# three CPUs are described nowhere and stay in the firmware's hands, waiting for a start-up IPI:
# the kernel runs alone and must never interrupt them (a wake IPI sent as a broadcast reached
# them, and QEMU ran each from its reset vector through qboot into the kernel's entry again, on
# the boot CPU's memory: faults, a second allocator start or a reset, in 5 boots of 5).
bedrock_add_qemu_test(x86_64.smp.microvm.4 LAUNCHER run-kernel ARGS -M microvm -m 256M -smp 4
    EXPECT_OUTPUT "MADT: 4 CPUs\n.*smp: 4 CPUs online")
bedrock_add_qemu_test(x86_64.smp.microvm.undescribed_cpus_are_never_interrupted
    LAUNCHER run-kernel ARGS -M microvm,acpi=off -m 128M -smp 4
    EXPECT_OUTPUT "no valid MP floating pointer structure; starting the boot CPU only\n.*smp: 1 CPUs online")

# The TSC's frequency from each source the kernel knows (arch/x86_64/clock.cpp), on the machine
# that leaves it the first that counts. Under -icount every clock is QEMU's virtual one and the
# TSC counts its nanoseconds, so each source must measure 1000 MHz. The RTC's, which waits for
# two changes of its seconds, runs with 32 ns per instruction: about as fast as the others.
set(clock_sources
    "pc|0|the PIT's channel 2"
    "microvm|0|the PIT's channel 0 \\(port 0x61 gates no channel 2\\)"
    "pc,pit=off|0|the ACPI PM timer \\(no PIT counts\\)"
    "microvm,pit=off|5|the CMOS RTC's seconds \\(no PIT counts, no ACPI PM timer\\)")
foreach(case IN LISTS clock_sources)
    string(REPLACE "|" ";" case "${case}")
    list(GET case 0 machine)
    list(GET case 1 shift)
    list(GET case 2 source)
    string(REGEX REPLACE "[,=]" "_" name "${machine}")
    bedrock_add_qemu_test(x86_64.clock.${name} LAUNCHER run-kernel
        ARGS -M ${machine} -icount shift=${shift} -rtc clock=vm
        EXPECT_OUTPUT "\nclock: TSC (999|1000|1001) MHz, measured against ${source}\n")
endforeach()
# No clock at all: the kernel says so and assumes a frequency; the tests still pass.
bedrock_add_qemu_test(x86_64.clock.none_is_named LAUNCHER run-kernel
    ARGS -M microvm,pit=off,rtc=off
    EXPECT_OUTPUT "\nclock: no PIT counts, no ACPI PM timer, no CMOS RTC: TSC assumed 2000 MHz; time-outs may be off\n")

# The boot benchmark under -icount shift=0: one guest instruction per virtual nanosecond, so
# the pair figures are instruction counts.
bedrock_add_qemu_test(x86_64.bench.icount LAUNCHER run-kernel ARGS -icount shift=0
    EXPECT_OUTPUT "bench: heap.pair_ns.64 [0-9]+\nbench: pfa.pair_ns.order0 [0-9]+\n")
# A fault on a secondary CPU is reported with that CPU's number and ends the run from there.
bedrock_add_kernel(bedrock-kernel-secondary-fault
    ${PROJECT_SOURCE_DIR}/tests/kernel/secondary_fault_test.cpp)
bedrock_qemu_launcher(run-kernel-secondary-fault
    SYMBOLS $<TARGET_FILE:bedrock-kernel-secondary-fault>
    BOOT -kernel $<TARGET_FILE:bedrock-kernel-secondary-fault>)
bedrock_add_qemu_test(x86_64.smp.fault_on_cpu_1_is_reported LAUNCHER run-kernel-secondary-fault
    ARGS -smp 2
    EXPECT_FAILURE "fault: page fault \\(vector 14, syndrome 0x[0-9a-f]+\\) on cpu 1\nfault: read access at address 0x0000400000000000.*fault: stopping with failure")
