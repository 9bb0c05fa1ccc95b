#!/usr/bin/env python3
"""Steady-state footprint of `hc-cli run`: RSS, peak RSS and CPU time per round.

usage: agent-footprint.py LABEL WARMUP_S MEASURE_S HC_CLI RUN_ARGS...

Starts `HC_CLI run RUN_ARGS... --metrics-addr 127.0.0.1:PORT`, lets it warm up, then reads
utime+stime from /proc/PID/stat and rounds_total from /metrics at the start and the end of the
measuring window; CPU per round = CPU time / rounds in the window. Run it in the namespace where
the agent should run (e.g. under `ip netns exec NODE`).
"""
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

label, warmup, measure, hc, *run_args = sys.argv[1:]
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
proc = subprocess.Popen([hc, "run", *run_args, "--metrics-addr", f"127.0.0.1:{port}"],
                        stdout=subprocess.DEVNULL)
tick = os.sysconf("SC_CLK_TCK")


def sample():
    with open(f"/proc/{proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    rounds = float(re.search(r"^coredns_healthcheck_rounds_total (\S+)", body, re.M).group(1))
    return cpu, rounds


def status(key):
    with open(f"/proc/{proc.pid}/status") as f:
        return int(re.search(rf"^{key}:\s+(\d+) kB", f.read(), re.M).group(1))


try:
    time.sleep(float(warmup))
    cpu0, r0 = sample()
    time.sleep(float(measure))
    cpu1, r1 = sample()
    rss, hwm = status("VmRSS"), status("VmHWM")
    rounds = r1 - r0
    per_round = (cpu1 - cpu0) * 1000 / rounds if rounds else float("nan")
    print(f"{label:<44} rounds {rounds:>5.0f}  cpu/round {per_round:7.3f} ms  "
          f"RSS {rss / 1024:6.2f} MiB  peak {hwm / 1024:6.2f} MiB")
finally:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)
