//! One module per command group.

pub mod action;
pub mod apikey;
pub mod execution;
pub mod inquiry;
pub mod key;
pub mod pack;
pub mod pack_install;
pub mod pack_new;
pub mod pack_sdk;
pub mod policy;
pub mod rule;
pub mod run;
pub mod sensor;
pub mod serve;
pub mod trigger;
pub mod workflow;
