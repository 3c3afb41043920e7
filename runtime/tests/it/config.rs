//! Issue 14, hole 4: the operator's model key stays in the environment
//! until a request needs it; the loaded configuration holds only its name,
//! and nothing prints a key.

use libos_runtime::model::openai::ApiKey;
use libos_runtime::{Config, Profile};
use pretty_assertions::assert_eq;

fn key_of(config: &Config, profile: &str) -> ApiKey {
    match config.profiles.get(profile) {
        Some(Profile::OpenAi(c)) => c.api_key.clone(),
        other => panic!("no openai profile `{profile}`: {other:?}"),
    }
}

#[test]
fn a_key_is_named_by_its_variable_and_never_held_or_shown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libos.toml");
    std::fs::write(&path, "[models.team]\nmodel = \"m\"\napi_key_env = \"TEAM_KEY\"\n").unwrap();
    let env = |k: &str| match k {
        "TEAM_KEY" | "OPENAI_API_KEY" => Some("sk-secret".to_string()),
        "LIBOS_MODEL" => Some("m".to_string()),
        _ => None,
    };
    let config = Config::load(Some(&path), &env).unwrap();
    assert_eq!(key_of(&config, "team"), ApiKey::Env("TEAM_KEY".to_string()));
    assert_eq!(key_of(&config, "default"), ApiKey::Env("OPENAI_API_KEY".to_string()));
    assert!(!format!("{config:?}").contains("sk-secret"), "{config:?}");
    assert_eq!(format!("{:?}", ApiKey::Value("sk-secret".into())), "Value(<redacted>)");
    // Read when a request is made, from the environment as it is then.
    assert_eq!(ApiKey::Env("PATH".to_string()).current(), std::env::var("PATH").ok());
    assert_eq!(ApiKey::Env("LIBOS_NO_SUCH_VARIABLE".to_string()).current(), None);
    // A variable the operator named but did not set is still an error at start.
    let missing = |_: &str| None;
    assert_eq!(
        Config::load(Some(&path), &missing).unwrap_err(),
        format!("config {}: models.team: environment variable TEAM_KEY is not set", path.display())
    );
}
