//! Dovecot-format passwd-file (`user:{SCHEME}hash:uid:gid:gecos:home:shell:extra`).
//!
//! INTERFACE CONTRACT — implementation pending (see the helper task).
