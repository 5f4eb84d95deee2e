//! End-to-end behaviour of a 3-node Raft group (real executors, sockets and WAL files); see `harness`.

mod failover;
mod harness;
mod replication;
mod transport;
mod wal;
