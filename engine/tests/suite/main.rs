//! The storage engine's integration tests, one test binary: each module is one former
//! `engine/tests/<name>.rs` file, named after the behaviour it proves (helpers in `common`).
//!
//! Adding a test file: put it in this folder and declare it below (`mod <file>;`, in order); it reaches
//! the helpers as `crate::common`. The root suite's `every_test_file_is_a_module_of_the_suite` checks this
//! folder too.

mod common;

mod acked_appends_survive_sigkill;
mod append_and_read;
mod applied_entries_make_identical_logs;
mod disk_footprint_follows_the_data;
mod key_index_answers_queries;
mod no_space_never_loses_acked_appends;
mod replicated_log_is_byte_identical;
mod retention_deletes_expired_segments;
mod torn_tail_is_truncated;
