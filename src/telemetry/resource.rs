//! The resource every signal carries: the Heroku conventions, then
//! `OTEL_RESOURCE_ATTRIBUTES`, then `OTEL_SERVICE_NAME` (the spec's precedence).

/// Key/value pairs in order; later ones replace earlier ones of the same key.
pub(crate) fn attributes(
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Vec<(String, String)> {
    let get = |name: &str| {
        lookup(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let mut out: Vec<(String, String)> = Vec::new();
    let mut set = |key: &str, value: Option<String>| {
        if let Some(value) = value {
            out.retain(|(k, _)| k != key);
            out.push((key.to_string(), value));
        }
    };
    set("service.name", Some("preheat".to_string()));
    set("service.name", get("HEROKU_APP_NAME"));
    set("service.version", get("HEROKU_RELEASE_VERSION"));
    set(
        "service.instance.id",
        get("HEROKU_DYNO_ID").or_else(|| get("DYNO")),
    );
    set("heroku.app.id", get("HEROKU_APP_ID"));
    set("heroku.app.name", get("HEROKU_APP_NAME"));
    set(
        "heroku.release.commit",
        get("HEROKU_BUILD_COMMIT").or_else(|| get("HEROKU_SLUG_COMMIT")),
    );
    set(
        "heroku.release.creation_timestamp",
        get("HEROKU_RELEASE_CREATED_AT"),
    );
    // DYNO is set on every Heroku dyno (Cedar and Fir); the metadata ones only with labs/Fir.
    let on_heroku = ["DYNO", "HEROKU_APP_ID", "HEROKU_DYNO_ID", "HEROKU_APP_NAME"]
        .iter()
        .any(|name| get(name).is_some());
    if on_heroku {
        set("cloud.provider", Some("heroku".to_string()));
    }
    set("process.command", Some("preheat".to_string()));
    for (key, value) in
        parse_resource_attributes(get("OTEL_RESOURCE_ATTRIBUTES").as_deref(), warnings)
    {
        set(&key, Some(value));
    }
    set("service.name", get("OTEL_SERVICE_NAME"));
    out
}

fn parse_resource_attributes(
    value: Option<&str>,
    warnings: &mut Vec<String>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in value.unwrap_or_default().split(',').map(str::trim) {
        if entry.is_empty() {
            continue;
        }
        match entry.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => out.push((
                key.trim().to_string(),
                percent_encoding::percent_decode_str(value.trim())
                    .decode_utf8_lossy()
                    .into_owned(),
            )),
            _ => warnings.push(format!(
                "OTEL_RESOURCE_ATTRIBUTES entry `{entry}` is not key=value; it is left out"
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn attrs(vars: &[(&str, &str)]) -> HashMap<String, String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        attributes(&|n| map.get(n).cloned(), &mut Vec::new())
            .into_iter()
            .collect()
    }

    #[test]
    fn fir_dyno_with_metadata() {
        let a = attrs(&[
            ("HEROKU_APP_NAME", "shop"),
            ("HEROKU_APP_ID", "9f1c"),
            ("HEROKU_RELEASE_VERSION", "v42"),
            ("HEROKU_DYNO_ID", "d-123"),
            ("DYNO", "web.1"),
            ("HEROKU_BUILD_COMMIT", "abc123"),
        ]);
        assert_eq!(a["service.name"], "shop");
        assert_eq!(a["service.version"], "v42");
        assert_eq!(a["service.instance.id"], "d-123");
        assert_eq!(a["heroku.app.id"], "9f1c");
        assert_eq!(a["heroku.release.commit"], "abc123");
        assert_eq!(a["cloud.provider"], "heroku");
    }

    #[test]
    fn cedar_dyno_without_metadata() {
        let a = attrs(&[("DYNO", "web.2")]);
        assert_eq!(a["service.name"], "preheat");
        assert_eq!(a["service.instance.id"], "web.2");
        assert_eq!(a["cloud.provider"], "heroku");
        assert!(!a.contains_key("service.version"));
    }

    #[test]
    fn off_heroku_has_no_cloud_provider() {
        assert!(!attrs(&[]).contains_key("cloud.provider"));
    }

    #[test]
    fn resource_attributes_merge_and_service_name_wins() {
        let a = attrs(&[
            ("HEROKU_APP_NAME", "shop"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=prod,service.name=x,team=a%20b",
            ),
        ]);
        assert_eq!(a["deployment.environment"], "prod");
        assert_eq!(a["service.name"], "x");
        assert_eq!(a["team"], "a b");
        let b = attrs(&[
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=x"),
            ("OTEL_SERVICE_NAME", "y"),
        ]);
        assert_eq!(b["service.name"], "y");
    }
}
