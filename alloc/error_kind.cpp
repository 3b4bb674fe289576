// Names of the error kinds, as they appear in reports.
#include "bedrock/platform.h"

namespace bedrock {

const char* to_string(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::FreeOutsideManagedMemory:
        return "free-outside-managed-memory";
    case ErrorKind::FreeMisaligned:
        return "free-misaligned";
    case ErrorKind::DoubleFree:
        return "double-free";
    case ErrorKind::FreeWrongOrder:
        return "free-wrong-order";
    case ErrorKind::ReserveConflict:
        return "reserve-conflict";
    case ErrorKind::InvalidPointer:
        return "invalid-pointer";
    case ErrorKind::ForeignHeap:
        return "foreign-heap";
    case ErrorKind::CorruptMetadata:
        return "corrupt-metadata";
    }
    return "unknown";
}

} // namespace bedrock
