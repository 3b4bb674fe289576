// SPDX-License-Identifier: MIT
// operator new and delete as the C++ library defines them, checked with the C++ library's own
// operators and with libbedrock-malloc.so preloaded: every form allocates and frees, aligned
// forms align, a failing throwing form calls the new-handler and then throws std::bad_alloc,
// a failing nothrow form returns null, an alignment that is no power of two fails at once. Prints
// "ok" and exits 0 when all hold. With the argument new_site (under the preload with
// BEDROCK_CHECK=report), writes one byte past a 100-byte block from operator new and deletes it:
// the report's "detected at" and the first address "allocated at" must both be addresses of this
// program's code (the delete's and the new's callers), not of the library; exits 1 if they are not.
// With the argument mismatches (BEDROCK_CHECK=report), frees a block of operator new[] with free(),
// a malloc'd one with operator delete, and deletes a block naming another size: the three reports
// are counted from stderr; exits 1 if they are not there.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include <unistd.h>

#define EXPECT(condition)                                                                          \
    do {                                                                                           \
        if (!(condition)) {                                                                        \
            std::printf("FAIL: %s (line %d)\n", #condition, __LINE__);                             \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

namespace {

// Unknown to the compiler, so that it cannot drop a failing allocation it could prove unused.
std::size_t opaque(std::size_t value) {
    volatile std::size_t copy = value;
    return copy;
}

int g_handler_calls = 0;
void counting_handler() {
    if (++g_handler_calls == 3) {
        std::set_new_handler(nullptr);
    }
}

struct alignas(256) Aligned {
    unsigned char bytes[256];
};

extern "C" const char __executable_start[];
extern "C" const char etext[];

// Whether the first address after `label` in `text` is one of this program's code.
bool names_the_program(const char* text, const char* label) {
    const char* at = std::strstr(text, label);
    if (at == nullptr) {
        return false;
    }
    const auto address =
        static_cast<std::uintptr_t>(std::strtoull(at + std::strlen(label), nullptr, 16));
    return address >= reinterpret_cast<std::uintptr_t>(__executable_start) &&
           address < reinterpret_cast<std::uintptr_t>(etext);
}

// The new_site case (the file comment): the report goes to a file, then to stderr, and is read.
int new_and_delete_name_their_callers() {
    std::FILE* report = std::tmpfile();
    const int saved = dup(2);
    EXPECT(report != nullptr && saved >= 0 && dup2(fileno(report), 2) >= 0);
    auto* block = static_cast<unsigned char*>(::operator new(opaque(100)));
    block[100] = 1;
    ::operator delete(block);
    dup2(saved, 2);
    char text[4096] = {};
    std::rewind(report);
    const std::size_t length = std::fread(text, 1, sizeof(text) - 1, report);
    std::fwrite(text, 1, length, stderr);
    EXPECT(names_the_program(text, "detected at "));
    EXPECT(names_the_program(text, "allocated at "));
    std::printf("ok\n");
    return 0;
}

} // namespace

// Not known to the compiler as operator new's or malloc's, so that it does not warn of the
// mismatches below, which are on purpose.
void* opaque_pointer(void* pointer) {
    void* volatile copy = pointer;
    return copy;
}

// Occurrences of `needle` in `text`.
int count_of(const char* text, const char* needle) {
    int count = 0;
    for (const char* at = std::strstr(text, needle); at != nullptr;
         at = std::strstr(at + 1, needle)) {
        ++count;
    }
    return count;
}

// The mismatches case (the file comment): free() of operator new[]'s block and operator delete
// of malloc's are each reported deallocation-mismatch, a sized delete of another size than the
// block's size-mismatch, and the program goes on.
int mismatches_are_reported() {
    std::FILE* report = std::tmpfile();
    const int saved = dup(2);
    EXPECT(report != nullptr && saved >= 0 && dup2(fileno(report), 2) >= 0);
    std::free(opaque_pointer(::operator new[](opaque(24))));
    ::operator delete(opaque_pointer(std::malloc(opaque(40))));
    ::operator delete(::operator new(opaque(48)), opaque(16));
    dup2(saved, 2);
    char text[8192] = {};
    std::rewind(report);
    const std::size_t length = std::fread(text, 1, sizeof(text) - 1, report);
    std::fwrite(text, 1, length, stderr);
    EXPECT(count_of(text, "deallocation-mismatch") == 2);
    EXPECT(std::strstr(text, "allocated by operator new[], freed by free()") != nullptr);
    EXPECT(std::strstr(text, "allocated by the malloc family, freed by operator delete") !=
           nullptr);
    EXPECT(count_of(text, "size-mismatch") == 1);
    EXPECT(names_the_program(text, "detected at "));
    std::printf("ok\n");
    return 0;
}

int main(int argc, char** argv) {
    if (argc == 2 && std::strcmp(argv[1], "new_site") == 0) {
        return new_and_delete_name_their_callers();
    }
    if (argc == 2 && std::strcmp(argv[1], "mismatches") == 0) {
        return mismatches_are_reported();
    }
    int* one = new int(7);
    int* many = new int[100];
    EXPECT(*one == 7);
    delete one;
    delete[] many;
    void* sized = ::operator new(48);
    ::operator delete(sized, 48);

    auto* aligned = new Aligned;
    auto* aligned_array = new Aligned[3];
    EXPECT(reinterpret_cast<std::uintptr_t>(aligned) % 256 == 0);
    EXPECT(reinterpret_cast<std::uintptr_t>(aligned_array) % 256 == 0);
    delete aligned;
    delete[] aligned_array;
    void* page = ::operator new (100, std::align_val_t{4096});
    EXPECT(reinterpret_cast<std::uintptr_t>(page) % 4096 == 0);
    ::operator delete (page, 100, std::align_val_t{4096});

    EXPECT(::operator new(opaque(SIZE_MAX - 4096), std::nothrow) == nullptr);
    EXPECT(::operator new[](opaque(SIZE_MAX - 4096), std::nothrow) == nullptr);
    EXPECT(::operator new (opaque(SIZE_MAX - 4096), std::align_val_t{64}, std::nothrow) == nullptr);
    int* nothrow = new (std::nothrow) int(3);
    EXPECT(nothrow != nullptr && *nothrow == 3);
    ::operator delete(nothrow, std::nothrow);

    bool threw = false;
    try {
        static_cast<void>(::operator new(opaque(SIZE_MAX - 4096)));
    } catch (const std::bad_alloc&) {
        threw = true;
    }
    EXPECT(threw);

    std::set_new_handler(counting_handler);
    threw = false;
    try {
        static_cast<void>(::operator new[](opaque(SIZE_MAX - 4096)));
    } catch (const std::bad_alloc&) {
        threw = true;
    }
    EXPECT(threw && g_handler_calls == 3);
    // An alignment that is no power of two fails at once, the new-handler not called.
    for (const std::size_t alignment :
         {std::size_t{0}, std::size_t{3}, std::size_t{5}, std::size_t{48}, std::size_t{4097}}) {
        EXPECT(::operator new (100, std::align_val_t{opaque(alignment)}, std::nothrow) == nullptr);
        EXPECT(::operator new[](100, std::align_val_t{opaque(alignment)}, std::nothrow) == nullptr);
        threw = false;
        try {
            static_cast<void>(::operator new (100, std::align_val_t{opaque(alignment)}));
        } catch (const std::bad_alloc&) {
            threw = true;
        }
        EXPECT(threw && g_handler_calls == 3);
    }

    std::unordered_map<std::string, std::vector<int>> table;
    for (int i = 0; i < 50000; ++i) {
        table[std::to_string(i)].assign(static_cast<std::size_t>(i % 17), i);
    }
    EXPECT(table.size() == 50000 && table["49999"].size() == 49999 % 17);
    std::printf("ok\n");
    return 0;
}
