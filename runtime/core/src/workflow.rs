//! Orquesta workflows: the language ([`spec`]), its expressions ([`expr`], [`yaql`]),
//! inspection before anything runs ([`mod@inspect`]) and the conductor that runs them
//! ([`conductor`]), all pure: the server persists [`conductor::WorkflowState`] and runs the
//! actions the conductor asks for.

pub mod conductor;
pub mod expr;
pub mod inspect;
pub mod spec;
pub mod yaql;

pub use conductor::{Conductor, ConductorError, Dispatch, WorkflowState};
pub use inspect::inspect;
pub use spec::{WorkflowError, WorkflowSpec};
