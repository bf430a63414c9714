"""The statements of reads from a replica (pgqrs/_replica.py): the engine's reads with the replica's lag."""

from __future__ import annotations

from . import FINISHED_RUNS, RUN_STATUS

IN_RECOVERY = "select pg_is_in_recovery()"
# Seconds the server's data is behind its primary: 0 on a primary, and on a standby that has replayed all the
# WAL it received; else the age of the last transaction it replayed (NULL: none yet, so unknown). A standby
# whose WAL receiver is cut off reads 0 too: its primary is gone, there is nothing newer to receive.
LAG = (
    "(case when not pg_is_in_recovery() then 0"
    " when pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() then 0"
    " else extract(epoch from clock_timestamp() - pg_last_xact_replay_timestamp()) end)::float8"
)
# RUN_STATUS, and the lag as a last column
REPLICA_RUN_STATUS = RUN_STATUS.replace(" from pgqrs.run_status", f", {LAG} from pgqrs.run_status")
# FINISHED_RUNS and the lag as a last column; one row of NULLs and the lag when none has finished
REPLICA_FINISHED_RUNS = (
    f"select f.*, l.lag from (select {LAG} as lag) as l left join ({FINISHED_RUNS}) as f on true"
)
