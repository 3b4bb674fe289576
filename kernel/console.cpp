// SPDX-License-Identifier: MIT
// Console output and the panic path, on top of arch::console_write and arch::exit.
//
// One CPU prints at a time: a print() holds the console's turn (g_console_owner == its CPU index
// + 1, else 0) from its first character to its last, so lines from several CPUs come out whole.
// The turn is never a reason to stop printing: the CPU that holds it enters again (an interrupt
// handler or a fault that prints in the middle of a line), and a CPU that waited kTurnWaitSpins
// for it (its holder stopped, or prints at length) writes anyway.
#include "kernel/console.h"

#include "bedrock/platform.h"
#include "bedrock/spinlock.h"
#include "kernel/arch.h"
#include "kernel/format.h"
#include "kernel/trap.h"

namespace bedrock::kernel {
namespace {

constexpr uint64_t kTurnWaitSpins = uint64_t{1} << 24;
constinit unsigned g_console_owner = 0;

class ConsoleTurn {
public:
    ConsoleTurn() {
        const unsigned me = platform::current_cpu() + 1;
        if (__atomic_load_n(&g_console_owner, __ATOMIC_RELAXED) == me) {
            return; // entered again on this CPU
        }
        for (uint64_t spins = 0; spins < kTurnWaitSpins; ++spins) {
            unsigned expected = 0;
            if (__atomic_compare_exchange_n(&g_console_owner, &expected, me, false,
                                            __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
                m_taken = true;
                return;
            }
            SpinLock::relax();
        }
    }
    ~ConsoleTurn() {
        if (m_taken) {
            __atomic_store_n(&g_console_owner, 0u, __ATOMIC_RELEASE);
        }
    }
    ConsoleTurn(const ConsoleTurn&) = delete;
    ConsoleTurn& operator=(const ConsoleTurn&) = delete;

private:
    bool m_taken = false;
};

void write_to_console(void*, const char* text, size_t length) {
    arch::console_write(text, length);
}

} // namespace

void vprint(const char* format, va_list arguments) {
    const ConsoleTurn turn;
    format_to(write_to_console, nullptr, format, arguments);
}

void print(const char* format, ...) {
    va_list arguments;
    va_start(arguments, format);
    vprint(format, arguments);
    va_end(arguments);
}

void panic(const char* format, ...) {
    char message[192];
    va_list arguments;
    va_start(arguments, format);
    vformat(message, sizeof(message), format, arguments);
    va_end(arguments);
    if (catching_traps()) {
        print("panic (caught by the test): %s\n", message);
        resume_if_catching(TrapKind::Panic, message, nullptr);
    }
    print("\npanic: %s\n", message);
    arch::exit(arch::ExitStatus::Failure);
}

} // namespace bedrock::kernel
