"""Killed applies converge on re-run with no side effect done twice.

Against a broker answering 10% of requests 503 (`--fail-rate 0.1`, seeded),
each trial takes rds-02 out of the maintenance example's `live` pool (drain
mode on, two fresh sessions disconnected, sticky bindings cleared, removal)
or puts it back, alternately; the apply is SIGKILLed at a point drawn from a
seeded random source: after a delay, or as soon as the k-th side effect of
the trial shows in the broker's event log. Re-runs must
converge (exit 0, at most 5 runs, a re-run may only fail on an injected 503),
a plan afterwards must show no change, and the event log must hold each side
effect of the trial exactly once. The seed is printed; passing it again draws
the same kill points (where a delay lands still depends on timing).

Usage: kill_rerun.py [--trials N] [--fail-rate F] [--seed S]"""

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, SEED, Broker, side_effects

OUT = ROOT / "examples" / "maintenance" / "rds-02-out"
BACK = ROOT / "examples" / "maintenance" / "rds-02-back"
TAKEN_OUT = ["destination.drain.start destination/rds-02/drain",
             "sessions.disconnect destination/rds-02/sessions",
             "sticky.clear pool/live/sticky-sessions/rds-02",
             "member.remove pool/live/member/rds-02"]
PUT_BACK = ["member.add pool/live/member/rds-02"]
PATIENCE = 120


def kill_at_random_point(broker, process, rng, start, expected):
    """Kills `process` after a random delay, or once a random number of the
    trial's side effects is in the log; returns how many were."""
    if rng.random() < 0.5:
        time.sleep(rng.uniform(0, 0.6))
    else:
        wanted = rng.randint(1, len(expected))
        deadline = time.monotonic() + PATIENCE
        while (len(side_effects(broker.events(start))) < wanted
               and process.poll() is None and time.monotonic() < deadline):
            time.sleep(0.005)
    process.kill()
    process.wait()
    return len(side_effects(broker.events(start)))


def converge(broker, config, trial):
    """Re-runs the apply until it succeeds; returns how many runs it took."""
    for attempt in range(1, 6):
        argv, env = broker.poolform("apply", str(config), "--auto-approve",
                                    "--lock-ttl", "1s", "--lock-timeout", "60s")
        rerun = subprocess.run(argv, env=env, capture_output=True, text=True)
        if rerun.returncode == 0:
            return attempt
        if "503" not in rerun.stdout + rerun.stderr:
            sys.exit(f"trial {trial}: a re-run failed for a reason other than an injected 503:\n"
                     f"{rerun.stdout}\n{rerun.stderr}")
    sys.exit(f"trial {trial}: no convergence in 5 runs")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--fail-rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=random.SystemRandom().randrange(1 << 32))
    args = parser.parse_args()
    print(f"kill-and-rerun: seed {args.seed}", flush=True)
    rng = random.Random(args.seed)
    state = Path(tempfile.mkdtemp(prefix="poolform-kill-")) / "state.json"
    broker = Broker(state, "--seed", str(SEED), "--fail-rate", str(args.fail_rate),
                    "--latency", "20", "--seed-random", str(args.seed))
    done_before_kill, runs = [], []
    for trial in range(args.trials):
        taking_out = trial % 2 == 0
        config, expected = (OUT, TAKEN_OUT) if taking_out else (BACK, PUT_BACK)
        if taking_out:
            for user in ("a", "b"):
                status, _ = broker.request("POST", "/v1/_sim/destinations/rds-02/sessions",
                                           {"user": f"{user}{trial}@corp.example",
                                            "state": "active"})
                assert status == 201, status
        start = broker.last_seq()
        argv, env = broker.poolform("apply", str(config), "--auto-approve", "--lock-ttl", "1s")
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        done_before_kill.append(kill_at_random_point(broker, process, rng, start, expected))
        runs.append(converge(broker, config, trial))
        argv, env = broker.poolform("plan", str(config), "--detailed-exitcode")
        if subprocess.run(argv, env=env, capture_output=True).returncode != 0:
            sys.exit(f"trial {trial}: a plan after convergence still shows changes")
        log = side_effects(broker.events(start))
        if sorted(log) != sorted(expected):
            sys.exit(f"trial {trial}: side effects {log}, expected each of {expected} once")
    stats = broker.stats()
    print(f"kill-and-rerun: {args.trials} trials at --fail-rate {args.fail_rate}, "
          f"{args.trials} converged, 0 side effects duplicated; side effects done before "
          f"the kill per trial {done_before_kill}; runs to converge {runs}; "
          f"{stats['injected_unavailable']} injected 503s")


if __name__ == "__main__":
    main()
