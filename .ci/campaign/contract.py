"""The contract campaign: schemathesis (installed by `run`) generates requests
from schema/broker-api.openapi.yaml against a reference broker started from
the maintenance seed on 127.0.0.1 with a token, with every check it has (the
statuses the contract documents as answers are in schemathesis.toml, the
one constraint its schema cannot state in hooks.py). Any failure, and any
error of the tool, fails the run. Prints the cases generated and failures.

Usage: contract.py SCHEMATHESIS_BIN [--max-examples N]"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, SEED, TOKEN, Broker

HERE = Path(__file__).resolve().parent


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("schemathesis")
    parser.add_argument("--max-examples", type=int, default=100)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="poolform-st-")) / "state.json"
    broker = Broker(state, "--seed", str(SEED), quiet=True)
    env = dict(os.environ, PYTHONPATH=str(HERE), SCHEMATHESIS_HOOKS="hooks")
    # One worker: hypothesis parses lambda sources with `ast`, which on
    # CPython 3.11 fails intermittently when two threads do it at once.
    command = [args.schemathesis, "--config-file", str(HERE / "schemathesis.toml"), "run",
               str(ROOT / "schema" / "broker-api.openapi.yaml"), "--url", broker.url,
               "--header", f"Authorization: Bearer {TOKEN}", "--checks", "all",
               "--max-examples", str(args.max_examples), "--workers", "1"]
    # Its cache of examples goes to a scratch directory, not the work tree.
    scratch = tempfile.mkdtemp(prefix="poolform-st-run-")
    result = subprocess.run(command, env=env, cwd=scratch, capture_output=True, text=True)
    broker.kill()
    output = result.stdout + result.stderr
    cases = re.search(r"(\d+) generated", output)
    found = re.search(r"found (\d+) unique failures?", output)
    failures = int(found.group(1)) if found else 0
    print(f"schemathesis: {cases.group(1) if cases else '?'} cases, {failures} failures "
          f"(exit {result.returncode})")
    if result.returncode != 0:
        print(output[-20000:])
        sys.exit(1)


if __name__ == "__main__":
    main()
