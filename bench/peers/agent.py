"""The part of the peer benchmark that runs inside an engine's own venv.

    <venv>/bin/python bench/peers/agent.py ENGINE install DSN
    <venv>/bin/python bench/peers/agent.py ENGINE trigger DSN N          -> {"seconds": ...} on stdout
    <venv>/bin/python bench/peers/agent.py ENGINE worker DSN INDEX       -> "ready", waits for "go", loops
    <venv>/bin/python bench/peers/agent.py ENGINE latency DSN SAMPLES GAP_LO GAP_HI SEED
                                                                         -> [[n, t_trigger, t_done], ...]

Only the standard library, psycopg and the engine's package are imported here (the project's own modules are
not on the path, so nothing can shadow the engine's imports).
"""

import importlib
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def wait_go():
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    if sys.stdin.readline().strip() != "go":
        os._exit(0)


def main():
    engine, role, dsn = sys.argv[1], sys.argv[2], sys.argv[3]
    rest = sys.argv[4:]
    spec = importlib.import_module(f"engines.{engine}")
    impl = importlib.import_module(f"engines.{engine}_impl")
    if role == "install":
        impl.install(dsn)
    elif role == "trigger":
        n = int(rest[0])
        client = impl.Client(dsn)
        t0 = time.perf_counter()
        for i in range(n):
            client.trigger(i)
        seconds = time.perf_counter() - t0
        client.close()
        print(json.dumps({"seconds": seconds}))
    elif role == "worker":
        impl.worker(dsn, int(rest[0]), wait_go)
    elif role == "latency":
        import psycopg

        samples, lo, hi, seed = int(rest[0]), float(rest[1]), float(rest[2]), int(rest[3])
        rng = random.Random(seed)
        client = impl.Client(dsn)
        out = []
        # the same for every engine: trigger through the engine's API, then poll its run state every 1 ms
        with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as conn:
            for n in range(samples):
                time.sleep(rng.uniform(lo, hi))
                t0 = time.time()
                handle = client.trigger(n)
                deadline = time.monotonic() + 60
                while conn.execute(spec.DONE_ONE, (handle,)).fetchone() is None:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"run {handle} did not complete within 60 s")
                    time.sleep(0.001)
                out.append([n, t0, time.time()])
        client.close()
        print(json.dumps(out))
    else:
        raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    main()
    # Skip interpreter finalisation: the Rust binding of pgqrs 0.15.3 sometimes crashes there (its runtime's
    # threads outlive the interpreter), which would turn a finished install into a failure.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
