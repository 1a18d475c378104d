#!/usr/bin/env python3
"""Times commands interleaved: each round runs every command once, in
alternating order, so a VM's drift (native times moving by 40% within a
minute here) falls on all of them alike, where hyperfine runs each
command's runs back to back. Prints each command's median and its ratio
to the first command's (the baseline, e.g. the native run).

    interleaved.py ROUNDS LABEL CMD [LABEL CMD]...   (CMD split as a shell would)
"""
import shlex
import statistics
import subprocess
import sys
import time


def main() -> None:
    rounds, rest = int(sys.argv[1]), sys.argv[2:]
    if not rest or len(rest) % 2:
        sys.exit("usage: interleaved.py ROUNDS LABEL CMD [LABEL CMD]...")
    commands = [(rest[i], shlex.split(rest[i + 1])) for i in range(0, len(rest), 2)]
    times = {label: [] for label, _ in commands}
    for _, argv in commands:  # one warm-up run each
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for r in range(rounds):
        for label, argv in commands if r % 2 == 0 else commands[::-1]:
            start = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[label].append(time.perf_counter() - start)
    base = statistics.median(times[commands[0][0]])
    print("  ".join(f"{label} {statistics.median(t) * 1000:.1f} ms ({statistics.median(t) / base:.2f}x)" for label, t in times.items()))


if __name__ == "__main__":
    main()
