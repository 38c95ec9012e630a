"""A rate-limited apply converges at the rate the broker admits.

A broker at `--rate-limit 5/s` (token bucket, burst 5) and a plan of exactly
`--steps` steps (201 by default): load-balanced pools each lose one of their
two members, which takes four steps each (drain mode on; disconnect the
sessions, a POST; clear the sticky bindings; remove the member), and plain
pools each gain a member (one step) for the remainder. The apply must exit 0
in one run, a plan afterwards must show no change, and every side effect
must be in the event log exactly once. Prints the wall time against the
ideal: the requests the broker admitted / rate.

Usage: rate_limit.py [--steps N] [--rate R]"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Broker, side_effects

STACK = "ratelimit"
LOAD_BALANCED = {"enabled": True, "sticky_sessions_minutes": 10, "grace_period_seconds": 30}


def destination(name, load_balanced=True):
    return {"name": name, "online": True, "process_execution_ready": True,
            "lb_service_installed": load_balanced, "maintenance": {"enabled": False, "allowed_groups": []},
            "sessions": {"active": 2, "disconnected": 0}, "labels": {}, "revision": 1}


def pool(name, members, load_balancing):
    return {"name": name, "load_balancing": load_balancing,
            "default_credentials": {"password_set": False},
            "labels": {"poolform.stack": STACK}, "members": members, "revision": 1}


def generate(directory, steps):
    """Writes seed.json and config.yaml for a plan of `steps` steps; returns
    the side effects applying it must log, once each."""
    seed = {"destinations": [], "pools": [], "sessions": []}
    config = [f"stack: {STACK}", "pools:"]
    expected = []
    for p in range(steps // 4):
        name, kept, leaving = f"p{p:03}", f"d{p:03}-a", f"d{p:03}-b"
        seed["destinations"] += [destination(kept), destination(leaving)]
        seed["sessions"] += [
            {"id": f"s-{p:03}-{n}", "user": f"user{n}-{p}@corp.example",
             "destination": host, "state": "active"}
            for host in (kept, leaving) for n in range(2)]
        seed["pools"].append(pool(name, [kept, leaving], LOAD_BALANCED))
        config += [f"  {name}:",
                   "    load_balancing: { enabled: true, sticky_sessions: 10m, grace_period: 30s }",
                   f"    members: [{kept}]",
                   "    drain: { sessions: disconnect, timeout: 15m }"]
        expected += [f"destination.drain.start destination/{leaving}/drain",
                     f"sessions.disconnect destination/{leaving}/sessions",
                     f"sticky.clear pool/{name}/sticky-sessions/{leaving}",
                     f"member.remove pool/{name}/member/{leaving}"]
    for q in range(steps % 4):
        name, kept, joining = f"q{q:03}", f"e{q:03}-a", f"e{q:03}-b"
        seed["destinations"] += [destination(kept, False), destination(joining, False)]
        seed["pools"].append(pool(name, [kept], {"enabled": False}))
        config += [f"  {name}:", f"    members: [{kept}, {joining}]"]
        expected.append(f"member.add pool/{name}/member/{joining}")
    (directory / "seed.json").write_text(json.dumps(seed))
    (directory / "config.yaml").write_text("\n".join(config) + "\n")
    return expected


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=201)
    parser.add_argument("--rate", type=int, default=5)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="poolform-rate-"))
    expected = generate(directory, args.steps)
    broker = Broker(directory / "state.json", "--seed", str(directory / "seed.json"),
                    "--rate-limit", f"{args.rate}/s")
    config = str(directory / "config.yaml")

    argv, env = broker.poolform("plan", config, "--format", "json")
    plan = json.loads(subprocess.run(argv, env=env, capture_output=True, text=True,
                                     check=True).stdout)
    steps = len(plan["steps"])
    if steps != args.steps:
        sys.exit(f"the generated plan has {steps} steps, not {args.steps}")
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
