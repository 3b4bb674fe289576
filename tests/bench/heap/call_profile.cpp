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

struct SourcePlace {
    std::string function; // short_name()
    std::string line;     // "file:line", empty outside this executable
};

// Where each of `addresses` lies: its function's short name and "file:line", from this
// executable's debug information (addr2line) or, outside it, its shared object's symbol.
// Empty if addr2line could not run.
std::vector<SourcePlace> places_of(const std::vector<uintptr_t>& addresses) {
    std::vector<SourcePlace> places(addresses.size());
    Dl_info self{};
    char executable[4096];
    const ssize_t length = readlink("/proc/self/exe", executable, sizeof(executable) - 1);
    if (dladdr(reinterpret_cast<void*>(&places_of), &self) == 0 || length <= 0) {
        return {};
    }
    executable[length] = '\0';
    const auto base = reinterpret_cast<uintptr_t>(self.dli_fbase);

    char list[] = "/tmp/heap_limits_trail_XXXXXX";
    const int fd = mkstemp(list);
    if (fd < 0) {
        return {};
    }
    FILE* listed = fdopen(fd, "w");
    std::vector<size_t> in_executable; // indexes of the addresses written, in order
    for (size_t i = 0; i < addresses.size(); ++i) {
        Dl_info info{};
        if (dladdr(reinterpret_cast<void*>(addresses[i]), &info) != 0 &&
            info.dli_fbase != self.dli_fbase) {
            places[i].function = info.dli_sname != nullptr ? info.dli_sname : "(a shared library)";
            continue;
        }
        fprintf(listed, "0x%lx\n", static_cast<unsigned long>(addresses[i] - base));
        in_executable.push_back(i);
    }
    fclose(listed);
    const std::string command =
        std::string("addr2line -f -C -e '") + executable + "' < " + list + " 2>/dev/null";
    FILE* names = popen(command.c_str(), "r");
    if (names == nullptr) {
        unlink(list);
        return {};
    }
    {
        char function[1024];
        char location[4096];
        for (const size_t i : in_executable) {
            if (fgets(function, sizeof(function), names) == nullptr ||
                fgets(location, sizeof(location), names) == nullptr) {
                break;
            }
            function[strcspn(function, "\n")] = '\0';
            location[strcspn(location, "\n")] = '\0';
            const std::string name = short_name(function);
            places[i].function = name.empty() ? std::string(function) : name;
            const char* file = strrchr(location, '/');
            places[i].line = file != nullptr ? file + 1 : location;
        }
        pclose(names);
    }
    unlink(list);
    return places;
}

} // namespace

void describe_trail(const std::vector<uintptr_t>& trail, char* out, size_t out_bytes) {
    out[0] = '\0';
    std::map<uintptr_t, uint64_t> per_address;
    for (const uintptr_t address : trail) {
        ++per_address[address];
    }
    std::vector<uintptr_t> addresses;
    for (const auto& [address, count] : per_address) {
        addresses.push_back(address);
    }
    const std::vector<SourcePlace> places = places_of(addresses);
    if (places.empty()) {
        return;
    }
    std::map<std::string, uint64_t> per_function;
    for (size_t i = 0; i < addresses.size(); ++i) {
        per_function[places[i].function] += per_address[addresses[i]];
    }

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

bool write_trail(const std::vector<uintptr_t>& trail, const char* path) {
    const std::vector<SourcePlace> places = places_of(trail);
    FILE* out = fopen(path, "w");
    if (out == nullptr || places.empty()) {
        if (out != nullptr) {
            fclose(out);
        }
        return false;
    }
    for (size_t i = 0; i < places.size();) {
        size_t run = 1;
        while (i + run < places.size() && places[i + run].function == places[i].function &&
               places[i + run].line == places[i].line) {
            ++run;
        }
        fprintf(out, "%zu %s %s\n", run, places[i].function.c_str(), places[i].line.c_str());
        i += run;
    }
    return fclose(out) == 0;
}

} // namespace bench
