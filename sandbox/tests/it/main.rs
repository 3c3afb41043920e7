//! The sandbox, tried from inside: programs that try to get out.

mod escape;
