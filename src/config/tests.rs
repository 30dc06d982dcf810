use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("preheat.toml"))
}

fn error(text: &str) -> (usize, usize, String) {
    match parse(text) {
        Err(ConfigError::Invalid {
            line,
            column,
            ref message,
            ref help,
            ..
        }) => (line, column, format!("{message} | {help}")),
        other => panic!("expected an invalid config, got {other:?}"),
    }
}

#[test]
fn empty_file_gives_defaults() {
    let config = parse("").expect("valid");
    assert!(config.migrate.is_empty() && config.prime.is_empty());
    assert_eq!(config.release.deadline, Span::secs(3300));
    assert_eq!(config.warmup.requests.len(), 1);
    assert_eq!(config.warmup.requests[0].path, "/");
    assert_eq!(config.warmup.deadline, Duration::from_secs(90));
}

#[test]
fn the_design_example_parses() {
    let config = parse(include_str!("../../examples/getting-started/preheat.toml")).expect("valid");
    assert!(!config.migrate.is_empty());
}

#[test]
fn full_file_parses() {
    let config = parse(indoc::indoc! {r#"
        [release]
        deadline = "55m"

        [[migrate]]
        name = "schema"
        run = "bundle exec rails db:migrate"
        timeout = "30m"
        only_if_env = ["DATABASE_URL"]

        [[prime]]
        name = "cache store"
        run = "bin/rails runner 'Cache.prime!'"
        required = false

        [[prime]]
        name = "search index"
        http = { method = "POST", url = "https://search.example.com/reindex", headers = { Authorization = "Bearer ${SEARCH_TOKEN}" } }
        expect_status = [200, 202]
        retries = 3

        [warmup]
        paths = ["/", "/dashboard"]
        rounds = 1
        concurrency = 4
        deadline = "90s"

        [[warmup.request]]
        path = "/api/health"
        method = "HEAD"
        expect_status = [204]

        [notify]
        webhook = "${PREHEAT_WEBHOOK_URL}"
    "#})
    .expect("valid");
    assert_eq!(config.migrate[0].name, "schema");
    assert_eq!(config.migrate[0].timeout, Some(Duration::from_mins(30)));
    assert_eq!(config.migrate[0].only_if_env, vec!["DATABASE_URL"]);
    assert!(!config.prime[0].required);
    let Action::Http(http) = &config.prime[1].action else {
        panic!("expected http");
    };
    assert_eq!(http.method, Method::Post);
    assert_eq!(http.retries, 3);
    assert!(http.expect.accepts(202) && !http.expect.accepts(204));
    assert_eq!(http.headers[0].0, "Authorization");
    assert_eq!(config.warmup.requests.len(), 3);
    assert_eq!(config.warmup.requests[2].method, Method::Head);
    assert!(config.notify.is_some());
}

#[test]
fn unknown_key_names_line_column_and_suggestion() {
    let (line, column, text) = error("[release]\ndedline = \"5m\"\n");
    assert_eq!((line, column), (2, 1));
    assert!(text.contains("unknown key `dedline`"), "{text}");
    assert!(text.contains("Did you mean `deadline`?"), "{text}");
}

#[test]
fn unknown_key_in_a_step_suggests() {
    let (line, _, text) = error("[[migrate]]\nname = \"x\"\nrun = \"true\"\ntimout = \"1m\"\n");
    assert_eq!(line, 4);
    assert!(text.contains("Did you mean `timeout`?"), "{text}");
}

#[test]
fn bad_duration_points_at_the_value() {
    let (line, column, text) = error("[release]\ndeadline = \"5 minutes\"\n");
    assert_eq!((line, column), (2, 12));
    assert!(text.contains("unknown unit"), "{text}");
}

#[test]
fn step_needs_exactly_one_action() {
    let (line, _, text) = error("[[prime]]\nname = \"a\"\n");
    assert_eq!(line, 1);
    assert!(text.contains("neither `run` nor `http`"), "{text}");
    let (_, _, text) = error("[[prime]]\nrun = \"x\"\nhttp = { url = \"https://example.com\" }\n");
    assert!(text.contains("both `run` and `http`"), "{text}");
}

#[test]
fn migrate_cannot_be_http() {
    let (line, _, text) = error("[[migrate]]\nhttp = { url = \"https://example.com\" }\n");
    assert_eq!(line, 2);
    assert!(
        text.contains("Move this request to a [[prime]] step"),
        "{text}"
    );
}

#[test]
fn bad_url_method_status_and_path() {
    let (_, _, text) = error("[[prime]]\nhttp = { url = \"ftp://x\" }\n");
    assert!(text.contains("not an http(s) URL"), "{text}");
    let (_, _, text) = error("[[prime]]\nhttp = { url = \"https://x\", method = \"FETCH\" }\n");
    assert!(text.contains("not an HTTP method"), "{text}");
    let (line, _, text) =
        error("[[prime]]\nhttp = { url = \"https://x\" }\nexpect_status = [200, 999]\n");
    assert_eq!(line, 3);
    assert!(text.contains("999 is not an HTTP status"), "{text}");
    let (_, _, text) = error("[warmup]\npaths = [\"dashboard\"]\n");
    assert!(text.contains("\"/dashboard\""), "{text}");
    let (_, _, text) = error("[warmup]\nconcurrency = 0\n");
    assert!(text.contains("between 1 and 64"), "{text}");
}

#[test]
fn bad_template_is_caught_at_parse_time() {
    let (_, _, text) = error("[notify]\nwebhook = \"${PREHEAT_WEBHOOK_URL\"\n");
    assert!(text.contains("closing"), "{text}");
}

#[test]
fn url_from_a_variable_is_checked_when_it_runs() {
    let config = parse("[[prime]]\nhttp = { url = \"${SEARCH_URL}/reindex\" }\n").expect("valid");
    assert_eq!(config.prime[0].name, "GET ${SEARCH_URL}/reindex");
}

#[test]
fn display_has_file_line_column_snippet_and_help() {
    let err = parse("[release]\ndedline = \"5m\"\n").expect_err("invalid");
    let text = err.to_string();
    assert!(
        text.starts_with("preheat.toml:2:1: unknown key `dedline`"),
        "{text}"
    );
    assert!(text.contains("2 | dedline = \"5m\""), "{text}");
    assert!(text.contains("^^^^^^^"), "{text}");
}

#[test]
fn a_wrong_type_points_at_the_reference() {
    let (line, column, text) = error("[warmup]\nrounds = \"three\"\n");
    assert_eq!((line, column), (2, 10), "{text}");
    assert!(
        text.ends_with(
            "| Fix the value at this place; docs/reference.md, “preheat.toml keys”, lists every key."
        ),
        "{text}"
    );
}

#[test]
fn no_lock_by_default() {
    let config = parse("[[migrate]]\nrun = \"true\"\n").expect("valid");
    assert_eq!(config.migrate[0].lock, None);
}

#[test]
fn step_lock_defaults_to_database_url_and_ten_minutes() {
    let config = parse("[[migrate]]\nrun = \"bin/migrate\"\nlock = \"postgres\"\n").expect("valid");
    let lock = config.migrate[0].lock.as_ref().expect("a lock");
    assert_eq!(lock.kind, LockKind::Postgres);
    assert_eq!(lock.url.raw(), "${DATABASE_URL}");
    assert_eq!(lock.url.vars(), vec!["DATABASE_URL"]);
    assert_eq!(lock.timeout, Duration::from_mins(10));
}

#[test]
fn step_lock_keys_override_release_defaults() {
    let config = parse(indoc::indoc! {r#"
        [release]
        lock = "postgres"
        lock_timeout = "2m"
        lock_url = "${DIRECT_DATABASE_URL}"

        [[migrate]]
        run = "first"

        [[migrate]]
        run = "second"
        lock_timeout = "30s"
        lock_url = "postgres://app@db.internal:5432/app?sslmode=verify-full"

        [[prime]]
        run = "prime"
    "#})
    .expect("valid");
    let first = config.migrate[0].lock.as_ref().expect("inherited lock");
    assert_eq!(first.timeout, Duration::from_mins(2));
    assert_eq!(first.url.raw(), "${DIRECT_DATABASE_URL}");
    let second = config.migrate[1].lock.as_ref().expect("inherited lock");
    assert_eq!(second.timeout, Duration::from_secs(30));
    assert!(second.url.raw().starts_with("postgres://app@db.internal"));
    assert_eq!(
        config.prime[0].lock, None,
        "[release] lock is for [[migrate]] only"
    );
}

#[test]
fn release_lock_timeout_alone_is_a_default_for_steps_that_lock() {
    let config = parse(indoc::indoc! {r#"
        [release]
        lock_timeout = "90s"

        [[migrate]]
        run = "locked"
        lock = "postgres"

        [[migrate]]
        run = "unlocked"
    "#})
    .expect("valid");
    let lock = config.migrate[0].lock.as_ref().expect("a lock");
    assert_eq!(lock.timeout, Duration::from_secs(90));
    assert_eq!(config.migrate[1].lock, None);
}

#[test]
fn lock_on_a_prime_step_is_located() {
    let (line, column, text) = error("[[prime]]\nrun = \"bin/prime\"\nlock = \"postgres\"\n");
    assert_eq!((line, column), (3, 8));
    assert!(
        text.contains("`lock` applies only to [[migrate]] steps"),
        "{text}"
    );
    let (line, _, text) = error("[[prime]]\nrun = \"x\"\nlock_timeout = \"1m\"\n");
    assert_eq!(line, 3);
    assert!(text.contains("`lock_timeout` applies only"), "{text}");
}

#[test]
fn unknown_lock_kind_is_located() {
    let (line, column, text) = error("[[migrate]]\nrun = \"x\"\nlock = \"mysql\"\n");
    assert_eq!((line, column), (3, 8));
    assert!(text.contains("`mysql` is not a kind of lock"), "{text}");
    let (line, _, text) = error("[release]\nlock = \"redis\"\n");
    assert_eq!(line, 2);
    assert!(text.contains("lock = \"postgres\""), "{text}");
}

#[test]
fn lock_timeout_without_a_lock_is_an_error() {
    let (line, column, text) = error("[[migrate]]\nrun = \"x\"\nlock_timeout = \"5m\"\n");
    assert_eq!((line, column), (3, 16));
    assert!(text.contains("no effect without a lock"), "{text}");
    let (line, _, _) = error("[[migrate]]\nrun = \"x\"\nlock_url = \"${DB}\"\n");
    assert_eq!(line, 3);
}

#[test]
fn bad_lock_timeout_and_url_are_located() {
    let (line, _, text) =
        error("[[migrate]]\nrun = \"x\"\nlock = \"postgres\"\nlock_timeout = \"soon\"\n");
    assert_eq!(line, 4);
    assert!(text.contains("not a duration"), "{text}");
    let (line, _, text) =
        error("[[migrate]]\nrun = \"x\"\nlock = \"postgres\"\nlock_url = \"mysql://u@h/d\"\n");
    assert_eq!(line, 4);
    assert!(text.contains("not a PostgreSQL URL scheme"), "{text}");
    let (line, _, text) = error("[release]\nlock_url = \"postgres://u:pw@h:notaport/d\"\n");
    assert_eq!(line, 2);
    assert!(text.contains("invalid port"), "{text}");
    let (_, _, text) =
        error("[[migrate]]\nrun = \"x\"\nlock = \"postgres\"\nlock_url = \"${DB\"\n");
    assert!(text.contains("closing"), "{text}");
}

#[test]
fn no_confirm_table_means_defaults() {
    let config = parse("").expect("valid");
    assert_eq!(config.confirm, None);
    let settings = config.confirm_settings();
    assert!(settings.enabled);
    assert_eq!(settings.deadline, Duration::from_mins(30));
    assert_eq!(settings.poll, Duration::from_secs(5));
    assert_eq!(settings.time_to_live, Duration::from_mins(35));
}

#[test]
fn empty_confirm_table_is_enabled_with_defaults() {
    let config = parse("[confirm]\n").expect("valid");
    assert_eq!(config.confirm, Some(Confirm::default()));
}

#[test]
fn confirm_keys_parse_and_time_to_live_follows_the_deadline() {
    let config = parse("[confirm]\ndeadline = \"10m\"\npoll = \"15s\"\n").expect("valid");
    let confirm = config.confirm.expect("a [confirm] table");
    assert!(confirm.enabled);
    assert_eq!(confirm.deadline, Duration::from_mins(10));
    assert_eq!(confirm.poll, Duration::from_secs(15));
    assert_eq!(confirm.time_to_live, Duration::from_mins(15));
    let config = parse("[confirm]\nenabled = false\ndeadline = \"10m\"\ntime_to_live = \"1h\"\n")
        .expect("valid");
    let confirm = config.confirm.expect("a [confirm] table");
    assert!(!confirm.enabled);
    assert_eq!(confirm.time_to_live, Duration::from_hours(1));
}

#[test]
fn confirm_poll_below_five_seconds_is_located() {
    let (line, column, text) = error("[confirm]\npoll = \"1s\"\n");
    assert_eq!((line, column), (2, 8));
    assert!(
        text.contains("`poll` must be at least 5s, not 1s"),
        "{text}"
    );
    let (_, _, text) = error("[confirm]\npoll = \"4500ms\"\n");
    assert!(text.contains("not 4500ms"), "{text}");
}

#[test]
fn confirm_time_to_live_must_outlast_the_deadline() {
    let (line, column, text) = error("[confirm]\ndeadline = \"30m\"\ntime_to_live = \"10m\"\n");
    assert_eq!((line, column), (3, 16));
    assert!(text.contains("shorter than the `deadline` (30m)"), "{text}");
}

#[test]
fn confirm_beyond_a_day_is_located() {
    let (line, _, text) = error("[confirm]\ndeadline = \"24h\"\n");
    assert_eq!(line, 2);
    assert!(
        text.contains(
            "`deadline` makes the detached dyno live 24h05m, longer than Heroku's 24h limit"
        ),
        "{text}"
    );
    let (line, _, _) = error("[confirm]\ntime_to_live = \"25h\"\n");
    assert_eq!(line, 2);
}

#[test]
fn unknown_confirm_key_suggests_the_closest() {
    let (line, column, text) = error("[confirm]\ntime_to_life = \"40m\"\n");
    assert_eq!((line, column), (2, 1));
    assert!(text.contains("unknown key `time_to_life`"), "{text}");
    assert!(text.contains("Did you mean `time_to_live`?"), "{text}");
    let (_, _, text) = error("[confirm]\npol = \"10s\"\n");
    assert!(text.contains("Did you mean `poll`?"), "{text}");
}

#[test]
fn syntax_error_has_a_location() {
    let (line, _, _) = error("[release\n");
    assert_eq!(line, 1);
}

#[test]
fn one_block_for_an_invalid_file_with_each_readers_ending() {
    let err = parse("[release]\ndedline = \"5m\"\n").expect_err("invalid");
    let detail = err.to_string();
    assert_eq!(
        err.user_block(ReadBy::Build),
        format!(
            "Invalid preheat.toml\n\n{detail}\n\nThe build stops here so that a bad file never reaches release phase. Fix the file and deploy again; `preheat check` shows the same error locally."
        )
    );
    assert_eq!(
        err.user_block(ReadBy::Release),
        format!(
            "Invalid preheat.toml\n\n{detail}\n\nThe release is aborted before any step ran. Fix the file and deploy again."
        )
    );
    assert_eq!(
        err.user_block(ReadBy::Rehearse),
        format!("Invalid preheat.toml\n\n{detail}\n\nThe build would fail here.")
    );
    assert_eq!(
        err.user_block(ReadBy::Command),
        format!("Invalid preheat.toml\n\n{detail}")
    );
}

#[test]
fn max_rounds_defaults_to_five_and_never_below_rounds() {
    let config = parse("[warmup]\npaths = [\"/\"]\n").expect("valid");
    assert_eq!((config.warmup.rounds, config.warmup.max_rounds), (1, 5));
    let config = parse("[warmup]\nrounds = 8\n").expect("valid");
    assert_eq!((config.warmup.rounds, config.warmup.max_rounds), (8, 8));
    let config = parse("[warmup]\nrounds = 2\nmax_rounds = 2\n").expect("valid");
    assert_eq!((config.warmup.rounds, config.warmup.max_rounds), (2, 2));
}

#[test]
fn max_rounds_below_rounds_or_out_of_range_is_located() {
    let (line, column, text) = error("[warmup]\nrounds = 3\nmax_rounds = 2\n");
    assert_eq!((line, column), (3, 14));
    assert!(
        text.contains("`max_rounds` (2) is lower than `rounds` (3)"),
        "{text}"
    );
    let (line, _, text) = error("[warmup]\nmax_rounds = 0\n");
    assert_eq!(line, 2);
    assert!(
        text.contains("`max_rounds` must be between 1 and 100, not 0"),
        "{text}"
    );
    let (_, _, text) = error("[warmup]\nmax_round = 3\n");
    assert!(text.contains("max_rounds"), "{text}");
}

#[test]
fn gate_timeout_defaults_to_45s_and_is_checked_where_written() {
    assert_eq!(
        parse("").expect("valid").warmup.gate_timeout,
        Duration::from_secs(45)
    );
    let config = parse("[warmup]\ngate_timeout = \"20s\"\n").expect("valid");
    assert_eq!(config.warmup.gate_timeout, Duration::from_secs(20));
    let (line, column, text) = error("[warmup]\npaths = [\"/\"]\ngate_timeout = \"2h\"\n");
    assert_eq!((line, column), (3, 16));
    assert!(
        text.contains("`gate_timeout` must be between 1s and 1h, not 2h"),
        "{text}"
    );
    let (line, _, text) = error("[warmup]\ngate_timeout = \"500ms\"\n");
    assert_eq!(line, 2);
    assert!(text.contains("not 500ms"), "{text}");
    let (line, _, text) = error("[warmup]\ngate_timeout = \"soon\"\n");
    assert_eq!(line, 2);
    assert!(text.contains("soon"), "{text}");
}

#[test]
fn the_first_user_window_defaults_to_200_requests_or_60s_and_is_checked_where_written() {
    let defaults = parse("").expect("valid").warmup;
    assert_eq!(
        (defaults.first_users, defaults.first_users_window),
        (200, Duration::from_mins(1))
    );
    let config = parse("[warmup]\nfirst_users = 50\nfirst_users_window = \"2m\"\n").expect("valid");
    assert_eq!(config.warmup.first_users, 50);
    assert_eq!(config.warmup.first_users_window, Duration::from_mins(2));
    let (line, column, text) = error("[warmup]\nfirst_users = 0\n");
    assert_eq!((line, column), (2, 15));
    assert!(
        text.contains("`first_users` must be between 1 and 10000, not 0"),
        "{text}"
    );
    let (line, _, text) = error("[warmup]\npaths = [\"/\"]\nfirst_users_window = \"2h\"\n");
    assert_eq!(line, 3);
    assert!(
        text.contains("`first_users_window` must be between 1s and 1h, not 2h"),
        "{text}"
    );
}

#[test]
fn every_problem_in_the_file_is_reported_at_once_in_file_order() {
    let text = "[[migrate]]\nhttp = { url = \"https://example.com\" }\n\n[[prime]]\nname = \"a\"\n\n[confirm]\npoll = \"1s\"\n";
    let Err(ConfigError::Several(errors)) = parse(text) else {
        panic!("expected three problems, got {:?}", parse(text));
    };
    let located: Vec<(usize, usize)> = errors
        .iter()
        .map(|error| match error {
            ConfigError::Invalid { line, column, .. } => (*line, *column),
            other => panic!("expected a located problem, got {other:?}"),
        })
        .collect();
    assert_eq!(located, [(2, 8), (4, 1), (8, 8)]);
    let shown = ConfigError::Several(errors).to_string();
    assert!(shown.starts_with("3 problems in this file:"), "{shown}");
    for place in [
        "preheat.toml:2:8:",
        "preheat.toml:4:1:",
        "preheat.toml:8:8:",
    ] {
        assert!(shown.contains(place), "{place} missing in:\n{shown}");
    }
    let carets = shown
        .lines()
        .filter(|line| line.trim_start().starts_with('|') && line.contains('^'))
        .count();
    assert_eq!(carets, 3, "one caret line per problem:\n{shown}");
}

#[test]
fn a_syntax_error_stops_before_the_rest() {
    let text = "[[prime]]\nname = \"a\"\n[confirm\npoll = \"1s\"\n";
    assert!(matches!(
        parse(text),
        Err(ConfigError::Invalid { line: 3, .. })
    ));
}

fn places(text: &str) -> Vec<(usize, usize, String)> {
    match parse(text) {
        Err(ConfigError::Several(errors)) => errors
            .iter()
            .map(|error| match error {
                ConfigError::Invalid {
                    line,
                    column,
                    message,
                    ..
                } => (*line, *column, message.clone()),
                other => panic!("expected a located problem, got {other:?}"),
            })
            .collect(),
        Err(ConfigError::Invalid {
            line,
            column,
            message,
            ..
        }) => vec![(line, column, message)],
        other => panic!("expected problems, got {other:?}"),
    }
}

#[test]
fn unknown_keys_and_wrong_types_are_all_reported_with_the_other_problems() {
    let text = "[[migrate]]\nrun = \"rake db:migrate\"\ntimeuot = \"5m\"\nretires = 2\n\n[warmup]\npaths = [\"/\"]\nrounds = \"three\"\n\n[warmpu]\npaths = []\n\n[confirm]\npoll = \"1s\"\n";
    let found = places(text);
    let lines: Vec<usize> = found.iter().map(|(line, _, _)| *line).collect();
    assert_eq!(lines, [3, 4, 8, 10, 14], "{found:#?}");
    assert!(found[0].2.contains("unknown key `timeuot`"), "{found:#?}");
    assert!(found[1].2.contains("unknown key `retires`"), "{found:#?}");
    assert!(found[3].2.contains("unknown key `warmpu`"), "{found:#?}");
    assert!(found[4].2.contains("`poll` must be at least"), "{found:#?}");
}

#[test]
fn a_wrongly_typed_key_is_not_also_reported_missing() {
    // Without `run`, the step would also be "neither `run` nor `http`".
    let found = places("[[migrate]]\nrun = 5\n\n[[prime]]\nname = \"a\"\n");
    let lines: Vec<usize> = found.iter().map(|(line, _, _)| *line).collect();
    assert_eq!(lines, [2, 4], "{found:#?}");
}
