"""What the campaign scripts share: the poolform binary, a reference broker
started on 127.0.0.1 (killed when the script ends), its HTTP API, its event
log, and poolform commands pointed at it. Standard library only."""

import atexit
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("POOLFORM_BIN", ROOT / "target" / "debug" / "poolform"))
TOKEN = "campaign-token"
SEED = ROOT / "examples" / "maintenance" / "broker-seed.json"
# The seed's fingerprint label was made from this password.
SEED_PASSWORD = "maintenance-demo"


class Broker:
    """`poolform broker serve` on 127.0.0.1:0 with `state`; `prefix` wraps
    the command (e.g. a shell setting a file-size limit) and must exec it;
    `quiet` drops its log."""

    def __init__(self, state, *extra, prefix=(), quiet=False):
        command = [*prefix, str(BIN), "broker", "serve", "--listen", "127.0.0.1:0",
                   "--token", TOKEN, "--state", str(state), *extra]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                                        stderr=subprocess.DEVNULL if quiet else None)
        line = self.process.stdout.readline().strip()
        if not line.startswith("listening on "):
            sys.exit(f"the broker did not start: {line!r}")
        self.url = line.removeprefix("listening on ")
        atexit.register(self.kill)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def request(self, method, path, body=None):
        """(status, parsed body or None), never raising on an HTTP status."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {TOKEN}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, text = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read()
        return status, (json.loads(text) if text else None)

    def get(self, path):
        """A read, repeated while the broker answers 503 or 429."""
        for _ in range(200):
            status, body = self.request("GET", path)
            if status == 200:
                return body
            if status not in (429, 503):
                sys.exit(f"GET {path}: {status} {body}")
        sys.exit(f"GET {path}: still refused after 200 attempts")

    def events(self, since=0):
        out = []
        while True:
            page = self.get(f"/v1/events?since={since}&limit=1000")
            out.extend(page["items"])
            if not page["next_cursor"] or not page["items"]:
                return out
            since = page["items"][-1]["seq"]

    def last_seq(self):
        events = self.events()
        return events[-1]["seq"] if events else 0

    def stats(self):
        return self.get("/v1/_sim/stats")

    def poolform(self, *args):
        """The argv and environment of `poolform ARGS --broker URL`."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("POOLFORM_BROKER", "POOLFORM_BROKER_TOKEN", "RUST_LOG")}
        env.update(POOLFORM_TOKEN=TOKEN, NO_COLOR="1", MAINT_PASSWORD=SEED_PASSWORD)
        return [str(BIN), *args, "--broker", self.url], env


def side_effects(events):
    """`op resource` of each event, leaving out the lease traffic every
    apply adds around its work."""
    return [f"{e['op']} {e['resource']}" for e in events if not e["op"].startswith("lock.")]
