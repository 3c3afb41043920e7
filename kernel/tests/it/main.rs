//! Kernel integration tests: transitions, leases, the store, the audit chain.

mod audit_chain;
mod store_open;
mod support;
mod transitions;
