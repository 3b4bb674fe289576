// SPDX-License-Identifier: MIT
// The profile of a counted call (see call_profile.h).
#include "call_profile.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <string>
#include <utility>

namespace bench {
namespace {

// "bedrock::heap::Arenas::take(unsigned long, ...)" -> "Arenas::take".
std::string short_name(std::string name) {
    constexpr const char* kAnonymous = "(anonymous namespace)::";
    for (size_t at = name.find(kAnonymous); at != std::string::npos; at = name.find(kAnonymous)) {
        name.erase(at, strlen(kAnonymous));
    }
    const size_t parameters = name.find('(');
    if (parameters != std::string::npos && parameters > 0) {
        name.resize(parameters);
    }
    for (const char* space : {"bedrock::heap::", "bedrock::pages::", "bedrock::", "bench::"}) {
        for (size_t at = name.find(space); at != std::string::npos; at = name.find(space)) {
            name.erase(at, strlen(space));
        }
    }
    return name;
}

} // namespace

void describe_trail(const std::vector<uintptr_t>& trail, char* out, size_t out_bytes) {
    out[0] = '\0';
    std::map<uintptr_t, uint64_t> per_address;
    for (const uintptr_t address : trail) {
        ++per_address[address];
    }
    Dl_info self{};
    char executable[4096];
    const ssize_t length = readlink("/proc/self/exe", executable, sizeof(executable) - 1);
    if (dladdr(reinterpret_cast<void*>(&describe_trail), &self) == 0 || length <= 0) {
        return;
    }
    executable[length] = '\0';
    const auto base = reinterpret_cast<uintptr_t>(self.dli_fbase);

    std::map<std::string, uint64_t> per_function;
    char list[] = "/tmp/heap_limits_trail_XXXXXX";
    const int fd = mkstemp(list);
    if (fd < 0) {
        return;
    }
    FILE* addresses = fdopen(fd, "w");
    std::vector<uint64_t> counts; // of the addresses written, in order
    for (const auto& [address, count] : per_address) {
        Dl_info info{};
        if (dladdr(reinterpret_cast<void*>(address), &info) != 0 &&
            info.dli_fbase != self.dli_fbase) {
            per_function[info.dli_sname != nullptr ? info.dli_sname : "(a shared library)"] +=
                count;
            continue;
        }
        fprintf(addresses, "0x%lx\n", static_cast<unsigned long>(address - base));
        counts.push_back(count);
    }
    fclose(addresses);
    const std::string command =
        std::string("addr2line -f -C -e '") + executable + "' < " + list + " 2>/dev/null";
    if (FILE* names = popen(command.c_str(), "r")) {
        char function[1024];
        char location[4096];
        for (const uint64_t count : counts) {
            if (fgets(function, sizeof(function), names) == nullptr ||
                fgets(location, sizeof(location), names) == nullptr) {
                break;
            }
            function[strcspn(function, "\n")] = '\0';
            const std::string name = short_name(function);
            per_function[name.empty() ? std::string(function) : name] += count;
        }
        pclose(names);
    }
    unlink(list);

    std::vector<std::pair<std::string, uint64_t>> ranked(per_function.begin(), per_function.end());
    std::sort(ranked.begin(), ranked.end(),
              [](const auto& a, const auto& b) { return a.second > b.second; });
    size_t used = 0;
    for (const auto& [name, count] : ranked) {
        const int written =
            snprintf(out + used, out_bytes - used, "%s%s %llu", used != 0 ? ", " : "", name.c_str(),
                     static_cast<unsigned long long>(count));
        if (written < 0 || static_cast<size_t>(written) >= out_bytes - used) {
            out[used] = '\0'; // the rest does not fit
            break;
        }
        used += static_cast<size_t>(written);
    }
}

} // namespace bench
