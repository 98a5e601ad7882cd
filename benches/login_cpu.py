#!/usr/bin/env python3
"""Where a login storm's CPU goes: the profile behind the login figures.

Started by `scripts/bench --login-cpu`. It measures raw argon2id verify
throughput with the same crate and parameters, then runs a 16-connection
login storm against the release Portcullis and reads, over the middle of the
storm, the CPU time of every server thread (from /proc/PID/task) and of the
whole machine (from /proc/stat). It prints one Markdown table: how the two
cores were spent, and what one login costs in argon2 and around it, against
what one raw verify costs. Every figure comes from this run.
"""

import argparse
import concurrent.futures
import os
import platform
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import Portcullis, log, login_storm, raw_argon2  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
# Thread names as Linux keeps them (15 bytes), and what they are.
KNOWN = {
    "argon2": "`argon2-N`: the hashing pool",
    "sqlx-sqlite-wor": "`sqlx-sqlite-worker-N`: the SQLite connections (writes, reads off the inline path)",
    "tokio-rt-worker": "`tokio-rt-worker`: HTTP, JSON, JWT, the service, inline session checks",
}


def thread_ticks(pid):
    """CPU ticks (user + system) per thread-name group of a process."""
    groups = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                text = stat.read()
        except FileNotFoundError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        group = re.sub(r"[-_ ]?\d+$", "", name)
        groups[group] = groups.get(group, 0) + int(fields[11]) + int(fields[12])
    return groups


def machine_ticks():
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    return dict(busy=user + nice + system + irq + softirq, idle=idle + iowait, steal=steal)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--portcullis", required=True)
    parser.add_argument("--argon2-raw", required=True)
    parser.add_argument("--seconds", type=int, default=20, help="length of the storm")
    args = parser.parse_args()
    if args.seconds < 6:
        parser.error("--seconds must be at least 6 (the first and last 2 s are not read)")

    workdir = tempfile.mkdtemp(prefix="portcullis-login-cpu-")
    cores = os.cpu_count()
    log(f"raw argon2 verify on {cores} threads, 10 s")
    raw = raw_argon2(args.argon2_raw, 10)
    server = Portcullis(args.portcullis, workdir, 3400)
    try:
        email = f"cpu-{int(time.time() * 1000)}@example.com"
        server.register(email)
        log(f"login storm, 16 connections, {args.seconds} s; reading CPU over the middle {args.seconds - 4} s")
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as background:
            storm = background.submit(login_storm, server, email, 16, args.seconds)
            time.sleep(2)
            threads_before, machine_before, started = thread_ticks(server.process.pid), machine_ticks(), time.time()
            time.sleep(args.seconds - 4)
            threads_after, machine_after, window = thread_ticks(server.process.pid), machine_ticks(), time.time() - started
            result = storm.result()
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)

    def cores_used(ticks):
        return ticks / TICK / window

    per_group = {g: cores_used(threads_after.get(g, 0) - threads_before.get(g, 0)) for g in threads_after}
    machine = {k: cores_used(machine_after[k] - machine_before[k]) for k in machine_after}
    server_total = sum(per_group.values())
    logins = result["ok_per_s"]
    argon2_cores = per_group.get("argon2", 0.0)

    print(f"\nMeasured {time.strftime('%Y-%m-%d')} on {platform.node()} ({cores} cores, {platform.machine()}), "
          f"16-connection login storm, {logins:,.1f} logins/s ({logins / raw:.0%} of raw argon2 verify, "
          f"{raw:,.1f}/s on {cores} threads, same run); CPU over {window:.1f} s of its middle:\n")
    print("| Where the cores went | Cores (of " + str(cores) + ") | Share |")
    print("|---|---|---|")
    rows = sorted(per_group.items(), key=lambda kv: -kv[1])
    for group, used in rows:
        if used >= 0.005:
            print(f"| Portcullis, {KNOWN.get(group, '`' + group + '`')} | {used:.3f} | {used / cores:.1%} |")
    others = max(machine["busy"] - server_total, 0.0)
    print(f"| Other processes (wrk, this script, the system) | {others:.3f} | {others / cores:.1%} |")
    print(f"| Idle | {machine['idle']:.3f} | {machine['idle'] / cores:.1%} |")
    if machine["steal"] > 0.005:
        print(f"| Stolen by the hypervisor | {machine['steal']:.3f} | {machine['steal'] / cores:.1%} |")
    print()
    raw_cost = cores / raw * 1000
    print("| Per login | CPU ms |")
    print("|---|---|")
    print(f"| One raw argon2 verify ({cores} cores / raw verifies per s) | {raw_cost:.2f} |")
    if logins:
        print(f"| argon2 threads, per login | {argon2_cores / logins * 1000:.2f} |")
        print(f"| The rest of Portcullis, per login | {(server_total - argon2_cores) / logins * 1000:.2f} |")
        print(f"| Other processes, per login | {others / logins * 1000:.2f} |")


if __name__ == "__main__":
    main()
