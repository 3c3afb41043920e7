//! Who may do what: the bearer token, and the `Host` check of a loopback
//! server.
//!
//! A token is what the console page can carry: it arrives in the page's
//! address (`/#token=...`), which the page reads as letters, digits, `-`
//! and `_` only, so a token with any other character would be accepted by
//! the server and never sent back by the page. [`Access::new`] refuses such
//! tokens, and short ones on a server reachable beyond this machine, so the
//! token the server holds is always one the page keeps whole.

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Shared;
use crate::error::ApiError;

/// The shortest token a server reachable beyond this machine accepts
/// (generated tokens have 32 characters).
pub const MIN_REMOTE_TOKEN: usize = 16;

/// Who may do what.
#[derive(Debug, Clone)]
pub struct Access {
    /// The bearer token mutations (and, off loopback, reads) need.
    pub token: String,
    /// The server listens on a loopback address only.
    pub loopback: bool,
}

/// Why a token cannot serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Nothing but whitespace.
    #[error("is empty")]
    Empty,
    /// A character the console page does not keep.
    #[error("holds {0:?}: a console token is letters, digits, `-` and `_` only (what the console page keeps)")]
    Character(char),
    /// Too short for a server others can reach.
    #[error(
        "is {0} characters: a server reachable beyond this machine needs a token of at least {MIN_REMOTE_TOKEN} \
         (leave it unset to have one generated)"
    )]
    TooShort(usize),
}

impl Access {
    /// Access with `token`, refused when the console page could not carry
    /// it or, off loopback, when it is shorter than [`MIN_REMOTE_TOKEN`].
    pub fn new(token: impl Into<String>, loopback: bool) -> Result<Access, TokenError> {
        let access = Access { token: token.into(), loopback };
        access.check()?;
        Ok(access)
    }

    /// A fresh random token (128 bits, hex).
    pub fn generate_token() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    /// What [`Access::new`] checks, for access built field by field.
    pub fn check(&self) -> Result<(), TokenError> {
        if self.token.trim().is_empty() {
            return Err(TokenError::Empty);
        }
        if let Some(c) = self.token.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))) {
            return Err(TokenError::Character(c));
        }
        let len = self.token.chars().count();
        if !self.loopback && len < MIN_REMOTE_TOKEN {
            return Err(TokenError::TooShort(len));
        }
        Ok(())
    }
}

/// The credentials of an `Authorization: Bearer TOKEN` header; the scheme's
/// case does not matter (RFC 9110, 11.1).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The host part of a `Host` header (without the port).
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The middleware in front of every route.
pub(crate) async fn guard(State(s): State<Shared>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    if s.access.loopback {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
        if !matches!(host_name(host), "localhost" | "127.0.0.1" | "::1") {
            return ApiError::forbidden_host(host).into_response();
        }
    }
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    // The console page itself carries no data: it asks for the token.
    let needs_token = !reads || (!s.access.loopback && request.uri().path() != "/");
    if needs_token {
        let given =
            headers.get(header::AUTHORIZATION).and_then(|h| h.to_str().ok()).and_then(bearer).unwrap_or_default();
        if !same(given.as_bytes(), s.access.token.as_bytes()) {
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_is_case_insensitive_and_the_credentials_trimmed() {
        for header in ["Bearer t", "bearer t", "BEARER  t ", " beArer t"] {
            assert_eq!(bearer(header), Some("t"), "{header:?}");
        }
        for header in ["Basic t", "Bearert", "Bearer", ""] {
            assert_eq!(bearer(header), None, "{header:?}");
        }
    }
}
