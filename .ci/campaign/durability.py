"""The broker acknowledges only what is on disk.

SIGKILL: four writers create pools as fast as the broker answers; the broker
is SIGKILLed at a random moment and restarted on the same state, over and
over. Every pool whose PUT was answered 200 must be there after each restart
(a write whose answer was lost with the kill may be there or not).

Failed persistence: the broker runs with a file-size limit (RLIMIT_FSIZE,
SIGXFSZ ignored), so once its state outgrows the limit every write of it
fails. Four writers keep creating pools (each refused one is retried once),
then some acknowledged pools are deleted to make room. After a SIGKILL and a
restart without the limit the broker must hold exactly the acknowledged
pools: none lost, none that was turned away.

Usage: durability.py [--kills N] [--seed S]"""

import argparse
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import Broker

FILLER = "x" * 900


def pools(broker):
    names, cursor = set(), ""
    while True:
        page = broker.get(f"/v1/pools?limit=1000&cursor={cursor}")
        names.update(p["name"] for p in page["items"])
        if not page["next_cursor"]:
            return names
        cursor = page["next_cursor"]


def writer(broker, prefix, acknowledged, refused, stop, retry_refused):
    """PUTs pools `prefix-N` until `stop`; 200s go to `acknowledged`, 503s
    (after the one retry, when asked) to `refused`."""
    n = 0
    while not stop.is_set():
        name = f"{prefix}-{n}"
        n += 1
        body = {"labels": {"filler": FILLER}}
        try:
            status, _ = broker.request("PUT", f"/v1/pools/{name}", body)
            if status == 503 and retry_refused:
                status, _ = broker.request("PUT", f"/v1/pools/{name}", body)
        except OSError:
            return
        if status == 200:
            acknowledged.add(name)
        elif status == 503:
            refused.add(name)
        else:
            sys.exit(f"PUT {name}: unexpected {status}")


def run_writers(broker, prefix, seconds, retry_refused=False, until_refused=None):
    acknowledged, refused, stop = set(), set(), threading.Event()
    threads = [threading.Thread(target=writer, daemon=True,
                                args=(broker, f"{prefix}w{w}", acknowledged, refused, stop,
                                      retry_refused))
               for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (until_refused and len(refused) >= until_refused):
        time.sleep(0.01)
    return acknowledged, refused, stop, threads


def sigkills(kills, rng):
    state = Path(tempfile.mkdtemp(prefix="poolform-kill9-")) / "state.json"
    acknowledged = set()
    for k in range(kills):
        broker = Broker(state)
        missing = acknowledged - pools(broker)
        if missing:
            sys.exit(f"after kill {k}: {len(missing)} acknowledged writes lost: {sorted(missing)[:5]}")
        acked, _, stop, threads = run_writers(broker, f"k{k}", rng.uniform(0.2, 1.0))
        broker.process.kill()
        broker.process.wait()
        stop.set()
        for t in threads:
            t.join()
        acknowledged |= acked
    broker = Broker(state)
    lost = len(acknowledged - pools(broker))
    broker.kill()
    print(f"durability: {kills} SIGKILLs of the broker under 4 writers: "
          f"{lost} of {len(acknowledged)} acknowledged writes lost")
    if lost:
        sys.exit(1)


def refused_persistence():
    state = Path(tempfile.mkdtemp(prefix="poolform-fsize-")) / "state.json"
    # Every refused write logs an error; the figures below are the report.
    limited = Broker(state, prefix=("sh", "-c", "trap '' XFSZ; ulimit -f 256; exec \"$@\"", "sh"),
                     quiet=True)
    acknowledged, refused, stop, threads = run_writers(limited, "f", 120, retry_refused=True,
                                                       until_refused=40)
    stop.set()
    for t in threads:
        t.join()
    if len(refused) < 40:
        sys.exit(f"only {len(refused)} writes were refused: the limit did not bite")
    kept = refused & pools(limited)
    if kept:
        sys.exit(f"{len(kept)} refused writes are visible: {sorted(kept)[:5]}")
    for name in sorted(acknowledged)[:5]:
        status, _ = limited.request("DELETE", f"/v1/pools/{name}")
        if status != 204:
            sys.exit(f"DELETE {name}: {status} (deleting must make room)")
        acknowledged.discard(name)
    limited.kill()
    restarted = Broker(state)
    on_disk = pools(restarted)
    restarted.kill()
    lost, appeared = acknowledged - on_disk, (on_disk - acknowledged) & refused
    print(f"durability: failed persistence (file-size limit): {len(acknowledged) + 5} writes "
          f"acknowledged, {len(refused)} refused with 503 (each retried once); after restart "
          f"{len(lost)} acknowledged lost, {len(appeared)} refused present")
    if lost or appeared or on_disk != acknowledged:
        sys.exit(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=random.SystemRandom().randrange(1 << 32))
    args = parser.parse_args()
    print(f"durability: seed {args.seed}", flush=True)
    sigkills(args.kills, random.Random(args.seed))
    refused_persistence()


if __name__ == "__main__":
    main()
