//! Keeps secrets out of everything preheat prints.
//!
//! Two rules: any `scheme://user:password@` loses its password, and any value
//! known to be secret (from the environment, or registered when a header is
//! expanded) is replaced wherever it shows up.

use std::sync::{Mutex, OnceLock};

const MASK: &str = "********";

static SECRETS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();

fn secrets() -> &'static Mutex<Vec<String>> {
    SECRETS.get_or_init(|| Mutex::new(secrets_from_env(std::env::vars())))
}

/// Names whose values are secret by convention.
pub(crate) fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["_TOKEN", "_KEY", "_SECRET", "_PASSWORD"]
        .iter()
        .any(|suffix| upper.ends_with(suffix))
        || matches!(
            upper.as_str(),
            "TOKEN" | "SECRET" | "PASSWORD" | "HEROKU_API_KEY"
        )
}

fn secrets_from_env(vars: impl Iterator<Item = (String, String)>) -> Vec<String> {
    let mut found = Vec::new();
    for (name, value) in vars {
        if is_secret_name(&name) {
            found.push(value.clone());
        }
        // A URL in any variable (DATABASE_URL, REDIS_URL…) may carry a password.
        if let Some(password) = url_password(&value) {
            found.push(password);
        }
    }
    found.retain(|value| value.len() >= 4);
    found
}

fn url_password(value: &str) -> Option<String> {
    let parsed = url::Url::parse(value).ok()?;
    parsed.password().map(str::to_string)
}

/// Registers a value that must never be printed, e.g. an expanded `Authorization` header.
pub(crate) fn register(secret: &str) {
    if secret.len() < 4 {
        return;
    }
    if let Ok(mut list) = secrets().lock() {
        if !list.iter().any(|known| known == secret) {
            list.push(secret.to_string());
            // Longest first, so a secret that contains another is masked whole.
            list.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
        // The bearer token part alone is secret as well.
        if let Some((_, token)) = secret.split_once(' ')
            && token.len() >= 4
            && !list.iter().any(|known| known == token)
        {
            list.push(token.to_string());
            list.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }
}

/// Masks known secrets and URL passwords in `text`.
pub(crate) fn scrub(text: &str) -> String {
    let mut out = mask_url_passwords(text);
    if let Ok(list) = secrets().lock() {
        for secret in list.iter() {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
    }
    out
}

/// `postgres://user:pw@host` → `postgres://user:********@host`, anywhere in a text.
fn mask_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme_end) = rest.find("://") {
        let (head, tail) = rest.split_at(scheme_end + 3);
        out.push_str(head);
        let authority_end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"')
            .unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.split_once(':') {
                    Some((user, _password)) => {
                        out.push_str(user);
                        out.push(':');
                        out.push_str(MASK);
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_url_passwords_anywhere() {
        assert_eq!(
            mask_url_passwords("connect postgres://u:s3cr3t@db.example.com:5432/d failed"),
            "connect postgres://u:********@db.example.com:5432/d failed"
        );
        assert_eq!(
            mask_url_passwords("https://example.com/a@b"),
            "https://example.com/a@b"
        );
        assert_eq!(mask_url_passwords("no url"), "no url");
    }

    #[test]
    fn secret_names() {
        for name in [
            "SEARCH_TOKEN",
            "AWS_SECRET",
            "STRIPE_KEY",
            "DB_PASSWORD",
            "HEROKU_API_KEY",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        assert!(!is_secret_name("PORT"));
        assert!(!is_secret_name("KEYBOARD"));
    }

    #[test]
    fn env_values_become_secrets() {
        let found = secrets_from_env(
            [
                ("SEARCH_TOKEN".to_string(), "tok-123456".to_string()),
                (
                    "DATABASE_URL".to_string(),
                    "postgres://u:hunter22@h/d".to_string(),
                ),
                ("PORT".to_string(), "5000".to_string()),
            ]
            .into_iter(),
        );
        assert!(found.contains(&"tok-123456".to_string()));
        assert!(found.contains(&"hunter22".to_string()));
        assert!(!found.contains(&"5000".to_string()));
    }

    #[test]
    fn registered_values_are_masked() {
        register("Bearer abcdefgh-registered");
        assert_eq!(
            scrub("sent Bearer abcdefgh-registered and abcdefgh-registered"),
            "sent ******** and ********"
        );
    }
}
