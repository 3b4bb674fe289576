# SPDX-License-Identifier: MIT
# The gdb_heap_inspector tests: tools/gdb/bedrock.py on a live QEMU guest (the kernel suites)
# and on a live host process under libbedrock-malloc.so (the hosted suite). Runs inside gdb
# (`gdb-multiarch -batch -nx -x heap_inspector_test.py`), its settings in the environment:
#   BEDROCK_INSPECTOR  tools/gdb/bedrock.py            BEDROCK_TIMEOUT  seconds for it all
#   kernel:  BEDROCK_LAUNCHER  build/<arch>/run-kernel   BEDROCK_ELF  the kernel's ELF
#            BEDROCK_APPEND    more kernel command-line words (bedrock.check=report: checked;
#                              bedrock.guard=1: every small checked block in a guard-page slot)
#   hosted:  BEDROCK_PROGRAM   tests/gdb/hosted_sample.c's program
#            BEDROCK_PRELOAD   libbedrock-malloc.so     BEDROCK_CHECK  its check level
# Kernel: boots the kernel halted (-S) with its gdbstub on a free port and `bedrock.gdb_sample=1`,
# runs it to bedrock_gdb_sample_stop() (kernel/gdb_sample.h), runs `bedrock heap`, `bedrock pfa`
# and `bedrock block` on the sample's blocks, and compares what they print with the kernel's
# `gdb-sample:` lines: bytes and blocks in use, pages held, each class's slabs and blocks in use,
# managed and free pages, and each block's heap, class and state.
# Hosted: runs the program to its bedrock_gdb_sample_stop() and checks `bedrock block` on its
# live and its freed block (and, checked, their call sites in main).
# Exits 0 only if every check passes; a hang (QEMU or the program never reaching the stop) is
# killed at the timeout and fails.

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import gdb

INSPECTOR = os.environ["BEDROCK_INSPECTOR"]
TIMEOUT = float(os.environ.get("BEDROCK_TIMEOUT", "90"))
APPEND = os.environ.get("BEDROCK_APPEND", "")
GUARDED = re.search(r"(^|\s)bedrock\.guard=[1-9]", APPEND) is not None
CHECKED = re.search(r"(^|\s)bedrock\.check=(report|abort)", APPEND) is not None or \
    os.environ.get("BEDROCK_CHECK", "off") in ("report", "abort")

failures = []


def finish(code):
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def expect(condition, what):
    print(("ok:   " if condition else "FAIL: ") + what)
    if not condition:
        failures.append(what)


def free_port():
    """A port nobody listens on now (QEMU may still lose it to another test: then retry)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port):
    """Whether a socket listens on `port` (read from /proc/net/tcp: a probe connection would be
    a gdb client to QEMU)."""
    with open("/proc/net/tcp") as table:
        for row in table.readlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            if int(local.split(":")[1], 16) == port and state == "0A":
                return True
    return False


def start_qemu(console):
    """QEMU halted, its gdbstub on a free port, in a session of its own; (process, port)."""
    for _ in range(5):
        port = free_port()
        qemu = subprocess.Popen(
            [os.environ["BEDROCK_LAUNCHER"], "-S", "-gdb", "tcp:127.0.0.1:%d" % port,
             "-append", ("bedrock.gdb_sample=1 " + APPEND).strip()],
            stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and qemu.poll() is None:
            if listening(port):
                return qemu, port
            time.sleep(0.1)
        stop_qemu(qemu)  # the port was taken meanwhile, or QEMU failed: try another
    print("FAIL: QEMU never opened its gdbstub")
    finish(1)


def stop_qemu(qemu):
    try:
        os.killpg(qemu.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    qemu.wait()


def run(command):
    print("(gdb) " + command)
    output = gdb.execute(command, to_string=True)
    print(output, end="")
    return output


def totals_of(words):
    """The `name value` pairs after a heap's address on its gdb-sample line."""
    return {words[i]: int(words[i + 1]) for i in range(3, len(words) - 1, 2)}


# The sample's last line: the launcher copies QEMU's output to the console file through `tee`,
# so the lines printed before the stop may reach the file after gdb sees the stop.
SAMPLE_END = re.compile(r"^gdb-sample: block region \S+\r?\n", re.MULTILINE)


def console_text(console_path, deadline):
    """The console's text once it holds the sample's last line, or as it is at the deadline."""
    while True:
        with open(console_path, errors="replace") as console:
            text = console.read()
        if SAMPLE_END.search(text) is not None or time.monotonic() >= deadline:
            return text
        time.sleep(0.05)


def sample_lines(console_path):
    text = console_text(console_path, time.monotonic() + 10)
    expect(SAMPLE_END.search(text) is not None, "the kernel's gdb-sample lines reached the console")
    sample = {"classes": {}, "blocks": {}, "region_heap": {}}
    for line in text.splitlines():
        words = line.strip().split()
        if words[:1] != ["gdb-sample:"]:
            continue
        if words[1] == "heap":
            sample["heap"] = int(words[2], 16)
            sample.update(totals_of(words))
        elif words[1] == "region_heap":
            sample["region_heap"] = dict(totals_of(words), heap=int(words[2], 16))
        elif words[1] == "class":
            sample["classes"][int(words[2])] = (int(words[4]), int(words[6]))
        elif words[1] == "pfa":
            sample["managed_pages"], sample["free_pages"] = int(words[3]), int(words[5])
        elif words[1] == "block":
            sample["blocks"][words[2]] = int(words[3], 16)
    return sample, text


def check_totals(command, heap, output):
    """The heap's address, bytes and blocks in use and pages held, as the kernel printed them."""
    found = re.search(r"heap 0x([0-9a-f]+) .*\n\s+in use: (\d+) bytes in (\d+) blocks; "
                      r"pages held (\d+)", output)
    expect(found is not None, "%s prints its heap and totals" % command)
    if found is None:
        return
    expect(int(found.group(1), 16) == heap["heap"], "%s: the heap's address" % command)
    for group, name in ((2, "bytes_in_use"), (3, "blocks_in_use"), (4, "pages_held")):
        expect(int(found.group(group)) == heap[name], "%s: %s %s == the kernel's %d"
               % (command, name, found.group(group), heap[name]))


def check_heap(sample, output):
    check_totals("bedrock heap", sample, output)
    rows = {}
    for row in re.finditer(r"^\s+\d+\s+(\d+)\s+\d+\s+(\d+)\s+(\d+)\s+\d+\s+\d+$", output, re.M):
        rows[int(row.group(1))] = (int(row.group(2)), int(row.group(3)))
    shown = {size: figures for size, figures in rows.items() if figures[0] != 0}
    expect(shown == sample["classes"],
           "bedrock heap: classes (size: slabs, in use) %s == the kernel's %s"
           % (shown, sample["classes"]))


def check_pfa(sample, output):
    managed = re.search(r"(\d+) managed pages", output)
    free = re.search(r"free pages (\d+) \((\d+) in free blocks, (\d+) on CPU", output)
    expect(managed is not None and int(managed.group(1)) == sample["managed_pages"],
           "bedrock pfa: managed pages == the kernel's %d" % sample["managed_pages"])
    expect(free is not None and int(free.group(1)) == sample["free_pages"],
           "bedrock pfa: free pages == the kernel's %d" % sample["free_pages"])
    per_order = re.search(r"^  free blocks per order: (.*)$", output, re.M)
    if free is not None and per_order is not None:
        pages = sum(int(n) << int(k) for k, n in
                    (pair.split(":") for pair in per_order.group(1).split()))
        expect(pages == int(free.group(2)), "bedrock pfa: the free blocks per order add up to "
               "the free blocks' pages (%d)" % int(free.group(2)))


def check_block(sample, name, output, holder, state):
    expect("heap: 0x%x" % sample["heap"] in output,
           "bedrock block %s: in heap 0x%x" % (name, sample["heap"]))
    expect(re.search(holder, output) is not None, "bedrock block %s: held by /%s/" % (name, holder))
    expect(re.search(r"state: " + state, output) is not None,
           "bedrock block %s: state /%s/" % (name, state))


def check_blocks(sample):
    blocks = sample["blocks"]

    def block(name, offset=0):
        return run("bedrock block 0x%x" % (blocks[name] + offset))

    if CHECKED:
        small = r"checked-mode block 0x[0-9a-f]+, 48 bytes asked for"
        medium = r"checked-mode block 0x[0-9a-f]+, 5000 bytes asked for"
        check_block(sample, "live", block("live"), small, "allocated")
        if GUARDED:
            check_block(sample, "live (guarded)", block("live"),
                        r"guard-page chunk 0x[0-9a-f]+, slot \d+\n",
                        "allocated")
            check_block(sample, "live+4096", block("live", 4096), r"guard-page chunk",
                        r"in a guard page")
        output = block("cached")
        check_block(sample, "freed", output, small, "freed, in quarantine")
        expect(re.search(r"freed at:\n\s+#0 0x[0-9a-f]+ in bedrock::kernel::run_gdb_sample", output)
               is not None, "bedrock block freed: its free call site is run_gdb_sample")
        output = block("medium")
        check_block(sample, "medium", output, medium, "allocated")
        expect(re.search(r"allocated at:\n\s+#0 0x[0-9a-f]+ in bedrock::kernel::run_gdb_sample"
                         r"[^\n]* at [^\n]*gdb_sample\.cpp:\d+", output) is not None,
               "bedrock block medium: its allocation call site is run_gdb_sample, with its line")
        check_block(sample, "freed_medium", block("freed_medium"), medium, "freed, in quarantine")
        check_block(sample, "large", block("large"), r"large run 0x[0-9a-f]+, 513 pages",
                    "allocated")
    else:
        small = r"of class \d+ \(48-byte blocks"
        check_block(sample, "live", block("live"), small, "allocated")
        check_block(sample, "cached", block("cached"), small, r"cached on CPU 0")
        check_block(sample, "medium", block("medium"), r"medium block at 0x%x" % blocks["medium"],
                    "allocated")
        # Kept for the next malloc of its size (alloc/heap/arenas.h): free, its header as it was.
        check_block(sample, "freed_medium", block("freed_medium"),
                    r"medium block at 0x%x" % blocks["freed_medium"], r"free \(kept for reuse\)")
        check_block(sample, "large", block("large"), r"large run 0x%x, 512 pages" % blocks["large"],
                    "allocated")
    check_block(sample, "live+8", block("live", 8), small, "interior pointer at offset 8 of a "
                "block that is allocated")
    output = block("not_heap")
    expect("state: not Bedrock's" in output, "bedrock block not_heap: not Bedrock's")
    region = sample["region_heap"]
    check_totals("bedrock heap <region heap>", region, run("bedrock heap 0x%x" % region["heap"]))
    check_block(dict(sample, heap=region["heap"]), "region", block("region"),
                r"of class \d+ \(112-byte blocks", "allocated")


def kill_children():
    """Kills the processes gdb started (the program under test), without gdb's API: the
    watchdog runs on a thread of its own."""
    for task in os.listdir("/proc/self/task"):
        with open("/proc/self/task/%s/children" % task) as children:
            for child in children.read().split():
                try:
                    os.kill(int(child), signal.SIGKILL)
                except ProcessLookupError:
                    pass


def start_watchdog(on_timeout):
    """Fails the test after TIMEOUT seconds, whatever gdb is waiting for."""

    def expire():
        # Straight to the file descriptor: gdb's Python streams belong to its main thread.
        os.write(1, b"FAIL: timeout after %g s\n" % TIMEOUT)
        on_timeout()
        finish(1)

    watchdog = threading.Timer(TIMEOUT, expire)
    watchdog.daemon = True
    watchdog.start()
    return watchdog


def stopped_at_sample():
    expect(str(gdb.selected_frame().name()) == "bedrock_gdb_sample_stop",
           "the program stopped at bedrock_gdb_sample_stop")


def kernel_main():
    console = tempfile.NamedTemporaryFile(prefix="bedrock-gdb-console-", delete=False)
    qemu, port = start_qemu(console)
    watchdog = start_watchdog(lambda: stop_qemu(qemu))
    try:
        run("file " + os.environ["BEDROCK_ELF"])
        run("target remote 127.0.0.1:%d" % port)
        run("break bedrock_gdb_sample_stop")
        run("continue")
        stopped_at_sample()
        sample, text = sample_lines(console.name)
        print("--- the kernel's gdb-sample lines:\n" + "\n".join(
            line for line in text.splitlines() if line.startswith("gdb-sample:")))
        run("source " + INSPECTOR)
        check_heap(sample, run("bedrock heap"))
        check_pfa(sample, run("bedrock pfa"))
        check_blocks(sample)
    except (gdb.error, KeyError) as error:
        expect(False, "no error (%s: %s)" % (type(error).__name__, error))
    finally:
        watchdog.cancel()
        stop_qemu(qemu)
        os.unlink(console.name)


def hosted_main():
    watchdog = start_watchdog(kill_children)
    try:
        run("file " + os.environ["BEDROCK_PROGRAM"])
        run("set startup-with-shell off")
        run("set environment LD_PRELOAD " + os.environ["BEDROCK_PRELOAD"])
        run("set environment BEDROCK_CHECK " + os.environ.get("BEDROCK_CHECK", "off"))
        run("break bedrock_gdb_sample_stop")
        run("run")
        stopped_at_sample()
        live = int(gdb.parse_and_eval("(unsigned long)gdb_sample_live"))
        freed = int(gdb.parse_and_eval("(unsigned long)gdb_sample_freed"))
        run("source " + INSPECTOR)
        heap = re.search(r"heap (0x[0-9a-f]+) ", run("bedrock heap"))
        expect(heap is not None, "bedrock heap names the default heap")
        sample = {"heap": int(heap.group(1), 16) if heap else 0}
        small = (r"checked-mode block 0x[0-9a-f]+, 48 bytes asked for" if CHECKED
                 else r"of class \d+ \(48-byte blocks")
        output = run("bedrock block 0x%x" % live)
        check_block(sample, "live", output, small, "allocated")
        output = run("bedrock block 0x%x" % freed)
        check_block(sample, "freed", output, small,
                    "freed, in quarantine" if CHECKED else r"cached on CPU \d+")
        if CHECKED:
            # The preload's malloc may be frame 0 of the allocation (its own call site).
            expect(re.search(r"allocated at:\n(\s+#\d[^\n]*\n)*?\s+#\d 0x[0-9a-f]+ in main\b"
                             r"[^\n]* at [^\n]*hosted_sample\.c:\d+", output) is not None,
                   "bedrock block freed: allocated in main, with its line")
            expect(re.search(r"freed at:\n\s+#0 0x[0-9a-f]+ in main\b", output) is not None,
                   "bedrock block freed: freed in main")
        run("kill")
    except gdb.error as error:
        expect(False, "no error (%s)" % error)
    finally:
        watchdog.cancel()


if "BEDROCK_PROGRAM" in os.environ:
    hosted_main()
else:
    kernel_main()
print("%d checks failed" % len(failures) if failures else "all checks passed")
finish(1 if failures else 0)
