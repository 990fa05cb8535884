//! One module per subcommand.

pub mod crdgen;
pub mod operator;
pub mod secrets;
