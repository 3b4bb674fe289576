# SPDX-License-Identifier: MIT
# fork.c during_growth under gdb (the hosted test fork.during_growth): holds the grower thread at
# PageFrameAllocator::add_range(), where the grow hook (hosted/memory_source.cpp) holds the
# reservation's lock but not yet the allocator's, and lets only the main thread run until it
# has forked (it reaches waitpid) or is waiting for a lock (sched_yield: lock_wait() inside the
# fork's prepare handler); then lets every thread run to the end. The test passes when the
# program exits 0: a child forked while the lock was held cannot grow (it hangs for 5 s, and
# the program fails). Environment: BEDROCK_PROGRAM (hosted_fork), BEDROCK_PRELOAD.
import os

import gdb


def run(command):
    gdb.execute(command, to_string=True)


def main():
    run("set pagination off")
    run("set confirm off")
    run("set breakpoint pending on")
    run("file " + os.environ["BEDROCK_PROGRAM"])
    run("set environment LD_PRELOAD=" + os.environ["BEDROCK_PRELOAD"])
    run("break bedrock::PageFrameAllocator::add_range if $_thread == 2")
    run("run during_growth")
    thread = gdb.selected_thread()
    frame = gdb.selected_frame()
    if thread is None or thread.num != 2 or "add_range" not in str(frame.name()):
        print("FAIL: the grower did not stop in add_range")
        return 1
    print("the grower holds the reservation's lock in add_range")
    run("delete")
    run("set scheduler-locking on")
    run("thread 1")
    run("break sched_yield")
    run("break waitpid")
    run("continue")
    print("the main thread stopped in " + str(gdb.selected_frame().name()))
    run("delete")
    run("set scheduler-locking off")
    run("continue")
    code = gdb.parse_and_eval("$_exitcode")
    if code.type.code == gdb.TYPE_CODE_VOID or int(code) != 0:
        print("FAIL: the program did not exit 0")
        return 1
    print("ok")
    return 0


gdb.execute("quit %d" % main())
