// SPDX-License-Identifier: MIT
// Trap recovery (see trap.h): the armed catch and its saved context.
#include "kernel/trap.h"

#include "kernel/arch.h"
#include "kernel/console.h"
#include "kernel/smp.h"

namespace bedrock::kernel {
namespace {

struct Catch {
    bool armed = false;
    unsigned cpu = 0; // the index of the CPU that armed it
    arch::SavedContext context = {};
    Trap trap = {};
};

constinit Catch g_catch;
constinit FaultExplainer g_explainer = nullptr;

void copy_text(char* destination, size_t capacity, const char* text) {
    size_t i = 0;
    for (; text != nullptr && text[i] != '\0' && i + 1 < capacity; ++i) {
        destination[i] = text[i];
    }
    destination[i] = '\0';
}

unsigned calling_cpu() {
    const CpuLocal* cpu = arch::cpu_local();
    return cpu != nullptr ? cpu->index : 0;
}

} // namespace

Trap run_catching_traps(void (*body)(void*), void* context) {
    if (g_catch.armed) {
        panic("run_catching_traps: a catch is armed already (one at a time)");
    }
    g_catch.trap = Trap{};
    g_catch.cpu = calling_cpu();
    g_catch.armed = true;
    if (arch_save_context(&g_catch.context) == 0) {
        body(context);
    }
    // Here after the body returned, or resumed from a trap with the catch already disarmed.
    g_catch.armed = false;
    return g_catch.trap;
}

bool catching_traps() {
    return g_catch.armed && g_catch.cpu == calling_cpu();
}

void resume_if_catching(TrapKind kind, const char* message, const FaultReport* fault) {
    if (!catching_traps()) {
        return;
    }
    g_catch.armed = false;
    g_catch.trap.kind = kind;
    copy_text(g_catch.trap.message, sizeof(g_catch.trap.message), message);
    if (fault != nullptr) {
        g_catch.trap.fault = *fault;
        g_catch.trap.fault.register_names = nullptr;
        g_catch.trap.fault.registers = nullptr;
        g_catch.trap.fault.register_count = 0;
    }
    arch_resume_context(&g_catch.context);
}

void set_fault_explainer(FaultExplainer explainer) {
    g_explainer = explainer;
}

FaultExplainer fault_explainer() {
    return g_explainer;
}

} // namespace bedrock::kernel
