//! Tools integration tests: parsing model calls, confinement, running tools.

mod confinement;
mod parse;
