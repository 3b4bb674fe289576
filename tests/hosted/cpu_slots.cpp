// SPDX-License-Identifier: MIT
// Bedrock::hosted's CPU slots (hosted/cpu_slots.cpp), through platform::current_cpu():
//   cpu_slots late_first_call  100 threads, one after another, each making its first call in
//                              glibc's last round of thread-specific-data destructors (too late
//                              for its slot's release key to run): each must get a slot, not
//                              the main thread's, and so must a new thread after them (the
//                              slots of the exited threads are taken over), and two live
//                              threads different ones
//   cpu_slots fork             the same in a child of fork() (after
//                              hosted::release_cpu_slots_after_fork(), as the preload's fork
//                              handler calls it): the forking thread has a new thread id there,
//                              and its slot must not be taken over as a gone thread's
//   cpu_slots all_live         kMaxCpus live threads (the main one among them) each have a slot
//                              of their own, one more has none (kNoCpuSlot), and once they exit a
//                              new thread has one again; kMaxCpus is EXPECTED_MAX_CPUS, the value
//                              of the build under test (built twice: with Bedrock::hosted's
//                              configuration and with libbedrock-malloc.so's)
// Prints "ok"; exits 1 after a "FAIL: ..." line on the first failed expectation.
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bedrock/hosted.h"
#include "bedrock/platform.h"

namespace {

using bedrock::platform::current_cpu;
using bedrock::platform::kMaxCpus;

void expect(bool condition, const char* what) {
    if (!condition) {
        std::printf("FAIL: %s\n", what);
        std::exit(1);
    }
}

pthread_key_t g_late_key;
unsigned g_late_slot;

// Sets the key again until glibc's last round (PTHREAD_DESTRUCTOR_ITERATIONS: 4), then makes
// the thread's first call.
void late_destructor(void* round) {
    const auto next = reinterpret_cast<uintptr_t>(round) + 1;
    if (next <= 4) {
        pthread_setspecific(g_late_key, reinterpret_cast<void*>(next));
        return;
    }
    g_late_slot = current_cpu();
}

void* set_late_key(void*) {
    pthread_setspecific(g_late_key, reinterpret_cast<void*>(uintptr_t{1}));
    return nullptr;
}

void* slot_of_thread(void* slot) {
    *static_cast<unsigned*>(slot) = current_cpu();
    return nullptr;
}

unsigned slot_of_new_thread() {
    unsigned slot = kMaxCpus;
    pthread_t thread;
    expect(pthread_create(&thread, nullptr, slot_of_thread, &slot) == 0, "pthread_create");
    pthread_join(thread, nullptr);
    return slot;
}

pthread_barrier_t g_both_live;

void* slot_while_both_live(void* slot) {
    *static_cast<unsigned*>(slot) = current_cpu();
    pthread_barrier_wait(&g_both_live);
    return nullptr;
}

// 100 late threads, then the checks of late_first_call (the file comment).
void take_slots_late(unsigned main_slot) {
    for (int i = 0; i < 100; ++i) {
        g_late_slot = kMaxCpus + 1;
        pthread_t thread;
        expect(pthread_create(&thread, nullptr, set_late_key, nullptr) == 0, "pthread_create");
        pthread_join(thread, nullptr);
        expect(g_late_slot < kMaxCpus, "a thread whose first call is in its last destructor "
                                       "round gets a slot");
        expect(g_late_slot != main_slot, "a late thread does not get the main thread's slot");
    }
    const unsigned slot = slot_of_new_thread();
    expect(slot < kMaxCpus && slot != main_slot, "a new thread gets a slot after 100 late exits");
    unsigned slots[2];
    pthread_t threads[2];
    pthread_barrier_init(&g_both_live, nullptr, 2);
    for (int i = 0; i < 2; ++i) {
        pthread_create(&threads[i], nullptr, slot_while_both_live, &slots[i]);
    }
    for (pthread_t thread : threads) {
        pthread_join(thread, nullptr);
    }
    expect(slots[0] < kMaxCpus && slots[1] < kMaxCpus && slots[0] != slots[1],
           "two live threads have slots of their own");
    expect(current_cpu() == main_slot, "the main thread keeps its slot");
}

pthread_barrier_t g_all_live;

void* slot_while_all_live(void* slot) {
    *static_cast<unsigned*>(slot) = current_cpu();
    pthread_barrier_wait(&g_all_live);
    pthread_barrier_wait(&g_all_live); // until the extra thread has looked
    return nullptr;
}

// The checks of all_live (the file comment).
void give_every_live_thread_a_slot(unsigned main_slot) {
    expect(kMaxCpus == EXPECTED_MAX_CPUS, "kMaxCpus is the configured value");
    static unsigned slots[kMaxCpus];
    static pthread_t threads[kMaxCpus];
    static bool taken[kMaxCpus];
    const unsigned others = kMaxCpus - 1;
    pthread_barrier_init(&g_all_live, nullptr, others + 1);
    for (unsigned i = 0; i < others; ++i) {
        expect(pthread_create(&threads[i], nullptr, slot_while_all_live, &slots[i]) == 0,
               "pthread_create");
    }
    pthread_barrier_wait(&g_all_live);
    taken[main_slot] = true;
    for (unsigned i = 0; i < others; ++i) {
        expect(slots[i] < kMaxCpus && !taken[slots[i]], "every live thread has a slot of its own");
        taken[slots[i]] = true;
    }
    expect(slot_of_new_thread() == bedrock::platform::kNoCpuSlot,
           "a thread beyond kMaxCpus live threads has no slot");
    pthread_barrier_wait(&g_all_live);
    for (unsigned i = 0; i < others; ++i) {
        pthread_join(threads[i], nullptr);
    }
    expect(slot_of_new_thread() < kMaxCpus, "a new thread has a slot once the others exited");
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        return 2;
    }
    const unsigned main_slot = current_cpu();
    expect(main_slot < kMaxCpus, "the main thread has a slot");
    expect(pthread_key_create(&g_late_key, late_destructor) == 0, "pthread_key_create");
    if (std::strcmp(argv[1], "late_first_call") == 0) {
        take_slots_late(main_slot);
    } else if (std::strcmp(argv[1], "all_live") == 0) {
        give_every_live_thread_a_slot(main_slot);
    } else if (std::strcmp(argv[1], "fork") == 0) {
        const pid_t child = fork();
        if (child == 0) {
            bedrock::hosted::release_cpu_slots_after_fork();
            take_slots_late(main_slot);
            _exit(0);
        }
        int status = 0;
        waitpid(child, &status, 0);
        expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's checks");
    } else {
        return 2;
    }
    std::printf("ok\n");
    return 0;
}
