//! A profile with fallbacks (`fallback = ["other", ...]` in `libos.toml`).
//!
//! A call goes to the first profile of the route that is available
//! ([`ChatModel::available`]: not backing off after a 429, not found down
//! within the last half minute); when its retries run out on a transient
//! error (the endpoint down, rate-limited past its backoff, 5xx), the call
//! goes to the next profile at once, and so on; the last profile is tried
//! even when it looks unavailable. Other errors end the route: a
//! bad request or a prompt over the context is the request's problem,
//! which another endpoint would not solve. Every attempt handed on is
//! recorded (`retried`, with the profile it went to), and the answer says
//! which profile gave it.
//!
//! The route's window is its first profile's, with the smallest context
//! any of its profiles reported, so that a prompt fits whichever answers.

use std::sync::Arc;

use async_trait::async_trait;

use super::{ChatModel, ChatRequest, ChatResponse, ModelError, Retried, Window};

/// Profiles tried in order.
pub struct Route {
    name: String,
    chain: Vec<Arc<dyn ChatModel>>,
}

impl Route {
    /// A route named like its first profile; `chain` must not be empty.
    pub fn new(chain: Vec<Arc<dyn ChatModel>>) -> Option<Route> {
        let name = chain.first()?.profile().to_string();
        Some(Route { name, chain })
    }
}

#[async_trait]
impl ChatModel for Route {
    fn profile(&self) -> &str {
        &self.name
    }

    fn available(&self) -> bool {
        self.chain.iter().any(|m| m.available())
    }

    async fn window(&self) -> Window {
        let mut win = self.chain[0].window().await;
        for m in &self.chain[1..] {
            if let Some(c) = m.window().await.context {
                win.context = Some(win.context.map_or(c, |w| w.min(c)));
            }
        }
        win
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let mut handed: Vec<Retried> = Vec::new();
        let last = self.chain.len() - 1;
        for (i, model) in self.chain.iter().enumerate() {
            if i < last && !model.available() {
                let error = "unavailable (backing off, or found down): handed to the next profile".to_string();
                handed.push(Retried { profile: model.profile().to_string(), error });
                continue;
            }
            let answered = model.profile().to_string();
            let mut result = model.complete(request).await;
            let info = match &mut result {
                Ok(r) => &mut r.info,
                Err(ModelError::Transient { info, .. } | ModelError::ContextOverflow { info, .. }) => &mut **info,
                Err(ModelError::Fatal(_)) => return result,
            };
            info.retried.splice(0..0, handed.drain(..));
            if answered != self.name {
                info.profile = Some(answered.clone());
            }
            match result {
                Err(ModelError::Transient { message, info, .. }) if i < last => {
                    handed = info.retried;
                    handed.push(Retried { profile: answered, error: format!("{message}: handed to the next profile") });
                }
                other => return other,
            }
        }
        // Only a route without profiles gets here, and `Route::new` makes none.
        Err(ModelError::Fatal(format!("model route `{}` has no profiles", self.name)))
    }
}
