//! One module per subcommand, each with its own `run` returning the exit code.

pub mod completions;
pub mod deploy;
pub mod health;
pub mod rollback;
pub mod shift;
pub mod status;
pub mod undo;
pub mod watch;
