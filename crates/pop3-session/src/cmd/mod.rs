//! One file per command family. Each adds `cmd_*` methods to `Session`; the state machine in
//! `session.rs` has already checked that the command is valid in the current state.

mod auth;
mod capa;
mod dele;
mod list;
mod quit;
mod retr;
mod stls;
mod uidl;
