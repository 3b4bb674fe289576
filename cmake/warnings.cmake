# The warning set for the project's own code. Third-party code (GoogleTest, Google Benchmark)
# is never compiled with it.
add_library(bedrock_warnings INTERFACE)
target_compile_options(bedrock_warnings INTERFACE
    -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wshadow -Wcast-align
    -Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual -Wnull-dereference
    -Wimplicit-fallthrough -Wmissing-declarations -Werror
    # Zero-length arrays and GNU statement expressions are not used; anonymous structs are
    # not either. Pedantic stays on, but the GNU attribute syntax is legitimate here.
    -Wno-gnu-zero-variadic-macro-arguments)
