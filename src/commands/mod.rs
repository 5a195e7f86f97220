//! One module per subcommand (moved here as each is touched; the rest still live in main.rs).

pub mod forward;
pub mod lake;
pub mod validate;
