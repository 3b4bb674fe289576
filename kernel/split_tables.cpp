// The kernel's reserve of split tables (see split_tables.h), in .bss.
#include "kernel/split_tables.h"

namespace bedrock::kernel {

SplitTables& split_tables() {
    static constinit SplitTables tables;
    return tables;
}

} // namespace bedrock::kernel
