//! One module per command group.

pub mod action;
pub mod apikey;
pub mod execution;
pub mod inquiry;
pub mod key;
pub mod rule;
pub mod run;
pub mod serve;
pub mod trigger;
pub mod workflow;
