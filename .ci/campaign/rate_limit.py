"""A rate-limited apply converges at the rate the broker admits.

A broker at `--rate-limit 5/s` (token bucket, burst 5) and a 201-step plan:
67 load-balanced pools each lose one of their two members, which takes three
steps each (disconnect the sessions, a POST; clear the sticky bindings; remove
the member). The apply must exit 0 in one run, a plan afterwards must show no
change, and every side effect must be in the event log exactly once. Prints
the wall time against the ideal: the requests the broker admitted / rate.

Usage: rate_limit.py [--pools N] [--rate R]"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Broker, side_effects

STACK = "ratelimit"


def destination(name):
    return {"name": name, "online": True, "process_execution_ready": True,
            "lb_service_installed": True, "maintenance": {"enabled": False, "allowed_groups": []},
            "sessions": {"active": 2, "disconnected": 0}, "labels": {}, "revision": 1}


def generate(directory, pools):
    seed = {"destinations": [], "pools": [], "sessions": []}
    config = [f"stack: {STACK}", "pools:"]
    for p in range(pools):
        kept, leaving = f"d{p:03}-a", f"d{p:03}-b"
        seed["destinations"] += [destination(kept), destination(leaving)]
        seed["sessions"] += [
            {"id": f"s-{p:03}-{n}", "user": f"user{n}-{p}@corp.example",
             "destination": host, "state": "active"}
            for host in (kept, leaving) for n in range(2)]
        seed["pools"].append({
            "name": f"p{p:03}",
            "load_balancing": {"enabled": True, "sticky_sessions_minutes": 10,
                               "grace_period_seconds": 30},
            "default_credentials": {"password_set": False},
            "labels": {"poolform.stack": STACK}, "members": [kept, leaving], "revision": 1})
        config += [f"  p{p:03}:",
                   "    load_balancing: { enabled: true, sticky_sessions: 10m, grace_period: 30s }",
                   f"    members: [{kept}]",
                   "    drain: { sessions: disconnect, timeout: 15m }"]
    (directory / "seed.json").write_text(json.dumps(seed))
    (directory / "config.yaml").write_text("\n".join(config) + "\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pools", type=int, default=67)
    parser.add_argument("--rate", type=int, default=5)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="poolform-rate-"))
    generate(directory, args.pools)
    broker = Broker(directory / "state.json", "--seed", str(directory / "seed.json"),
                    "--rate-limit", f"{args.rate}/s")
    config = str(directory / "config.yaml")

    argv, env = broker.poolform("plan", config, "--format", "json")
    plan = json.loads(subprocess.run(argv, env=env, capture_output=True, text=True,
                                     check=True).stdout)
    steps = len(plan["steps"])
    before = broker.stats()

    argv, env = broker.poolform("apply", config, "--auto-approve")
    started = time.monotonic()
    applied = subprocess.run(argv, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    stats = broker.stats()
    # The two stats calls are not the apply's.
    requests = stats["total"] - before["total"] - 1
    turned_away = stats["rate_limited"] - before["rate_limited"]
    if applied.returncode != 0:
        sys.exit(f"the rate-limited apply failed (exit {applied.returncode}):\n"
                 f"{applied.stdout[-3000:]}\n{applied.stderr[-3000:]}")

    argv, env = broker.poolform("plan", config, "--detailed-exitcode")
    if subprocess.run(argv, env=env, capture_output=True).returncode != 0:
        sys.exit("a plan after the apply still shows changes")
    log = side_effects(broker.events())
    expected = []
    for p in range(args.pools):
        leaving = f"d{p:03}-b"
        expected += [f"sessions.disconnect destination/{leaving}/sessions",
                     f"sticky.clear pool/p{p:03}/sticky-sessions/{leaving}",
                     f"member.remove pool/p{p:03}/member/{leaving}"]
    duplicated = len(log) - len(set(log))
    if sorted(log) != sorted(expected):
        sys.exit(f"the event log is not one of each side effect: {duplicated} duplicated, "
                 f"{len(set(expected) - set(log))} missing")

    admitted = requests - turned_away
    ideal = admitted / args.rate
    print(f"rate limit: a {steps}-step apply at --rate-limit {args.rate}/s converged in one run "
          f"in {wall:.1f} s; {admitted} requests admitted (ideal {admitted} / {args.rate} = "
          f"{ideal:.1f} s, so {wall / ideal:.2f}x), {turned_away} more answered 429 "
          f"and retried; {len(log)} side effects, each once")


if __name__ == "__main__":
    main()
