//! libos's HTTP face: a JSON API over a store, a live event stream and the
//! browser console, served by `libos serve`.

pub mod wire;
