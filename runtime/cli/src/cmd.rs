//! One module per command group.

pub mod action;
pub mod execution;
pub mod run;
