// The test kernel's implementation of Bedrock's platform interface (bedrock/platform.h).
// The kernel identity-maps all RAM, so phys->virt is the identity; reports go to the console and
// to the ErrorLog that tests inspect.
#include "bedrock/platform.h"

#include "kernel/console.h"
#include "kernel/error_log.h"

namespace bedrock {
namespace kernel {

ErrorLog& error_log() {
    static constinit ErrorLog log;
    return log;
}

} // namespace kernel

namespace platform {

void* phys_to_virt(PhysAddr phys) {
    return reinterpret_cast<void*>(static_cast<uintptr_t>(phys));
}

void report_error(const ErrorReport& report) {
    kernel::print("bedrock: %s: %s at 0x%lx (size/order %lu, caller %p): %s\n", report.component,
                  to_string(report.kind), report.address, report.size, report.call_site,
                  report.detail);
    kernel::error_log().record(report);
}

void assertion_failed(const char* expression, const char* file, int line) {
    kernel::panic("assertion failed: %s at %s:%d", expression, file, line);
}

} // namespace platform
} // namespace bedrock
