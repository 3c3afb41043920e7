//! Runtime integration tests: the HTTP model client against a mock server,
//! and quanta run by the scheduler with scripted and mock models.

mod openai;
mod scheduler;
