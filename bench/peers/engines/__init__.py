"""Engines of the peer benchmark. Each engine is two modules:

``<name>.py`` -- imported by the runner (the project's .venv): what it needs to know without the engine's
package installed.
  NAME, LABEL       database suffix and the name shown in the table
  REQUIREMENTS      pip requirement strings for the engine's own venv, or None to run in the project's .venv
  SETTINGS          one line: how its worker is configured (left at the engine's defaults unless said)
  DONE_ONE          SQL with one parameter (a handle from Client.trigger): a row once that run is complete
  DONE_COUNT        SQL: completed runs
  TOTAL             SQL: runs that exist (checks a trigger measurement)
  TIMES             SQL: (created, started, finished) epoch seconds per completed run, from the engine's own
                    DB timestamps (started = first claimed by a worker)
  verify(conn, n)   runs 0..n-1 that completed with output {"sum": 3n+3} AND whose three step checkpoints hold
                    {"i": n}, {"i": n+1}, {"i": n+2} in the database (procrastinate has no steps: see there)

``<name>_impl.py`` -- imported by bench/peers/agent.py inside the engine's venv, with the engine package:
  install(dsn)                  schema (and queue) in a fresh database
  Client(dsn)                   .trigger(n) -> handle (JSON-serialisable), .close()
  worker(dsn, idx, wait_go)     set up, call wait_go(), then the engine's stock worker loop forever
"""
