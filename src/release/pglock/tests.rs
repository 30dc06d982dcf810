//! Tests of the migration lock. The ones marked "real server" connect to the
//! Postgres server in `PREHEAT_TEST_DATABASE_URL` (scripts/test starts one).
//! Without it they print a note and pass, unless `PREHEAT_REQUIRE_PG=1`,
//! where they fail: scripts/test sets both, so CI never skips them.

use super::key::app_identity_from;
use super::target::{APPLICATION_NAME, Host, Tls};
use super::*;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};

const PASSWORD: &str = "Sup3rSecretPw-lock";

fn no_wait(_: WaitInfo) {}

/// The test server's URL, or `None` (with a note) when there is none.
fn server_url() -> Option<String> {
    match std::env::var("PREHEAT_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("PREHEAT_REQUIRE_PG").as_deref() != Ok("1"),
                "PREHEAT_REQUIRE_PG=1 but PREHEAT_TEST_DATABASE_URL is not set: \
                 run the tests through scripts/test, which starts a throwaway PostgreSQL"
            );
            eprintln!(
                "note: skipping a PostgreSQL lock test: set PREHEAT_TEST_DATABASE_URL (scripts/test does)"
            );
            None
        }
    }
}

/// The server's TLS setup from scripts/test: the CA file when TLS is on.
fn server_tls_ca() -> Option<String> {
    match std::env::var("PREHEAT_TEST_PG_CA") {
        Ok(path) if !path.is_empty() => Some(path),
        _ => {
            assert!(
                std::env::var("PREHEAT_REQUIRE_PG").as_deref() != Ok("1"),
                "PREHEAT_REQUIRE_PG=1 but PREHEAT_TEST_PG_CA is not set: scripts/test turns TLS on with openssl"
            );
            eprintln!("note: skipping a TLS lock test: the test server has no TLS");
            None
        }
    }
}

/// A test-unique app name, so parallel tests use different keys.
fn app(test: &str) -> String {
    format!("preheat-test-{test}-{}", std::process::id())
}

fn with_param(url: &str, param: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{param}")
}

fn key_for(url: &str, app: &str) -> i64 {
    lock_key(app, &Target::parse(url).expect("a valid url"))
}

/// Who holds `key` right now, seen from a separate connection.
fn holder_of(url: &str, key: i64) -> Option<Holder> {
    let session = connect(&Target::parse(url).expect("valid"), Duration::from_secs(10))
        .expect("a probe connection");
    session
        .runtime
        .block_on(lock_holder(&session.client, key))
        .expect("pg_locks look-up")
}

fn assert_no_password(text: &str) {
    assert!(!text.contains(PASSWORD), "password leaked: {text}");
}

// ---- no server needed ----

#[test]
fn key_is_stable_and_depends_on_app_and_database_only() {
    let base = "postgres://u:pw1@db.example.com:5432/app";
    let key = key_for(base, "app-1");
    assert_eq!(key, key_for(base, "app-1"), "stable");
    assert_eq!(
        key,
        key_for(
            "postgres://other:pw2@DB.example.com:5432/app?sslmode=require",
            "app-1"
        ),
        "user, password, case of the host and parameters do not matter"
    );
    assert_ne!(key, key_for(base, "app-2"));
    assert_ne!(
        key,
        key_for("postgres://u:pw1@db2.example.com:5432/app", "app-1")
    );
    assert_ne!(
        key,
        key_for("postgres://u:pw1@db.example.com:5433/app", "app-1")
    );
    assert_ne!(
        key,
        key_for("postgres://u:pw1@db.example.com:5432/app2", "app-1")
    );
    // Documented derivation, pinned so a refactor cannot split the lock between versions.
    let digest = Sha256::digest(b"preheat-migration-lock/v1\napp-1\ndb.example.com\n5432\napp");
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    assert_eq!(key, i64::from_be_bytes(bytes));
}

#[test]
fn key_halves_match_pg_locks() {
    // SELECT pg_advisory_lock(-8070450532247928832) shows classid 2415919104, objid 0.
    assert_eq!(key_halves(-8_070_450_532_247_928_832), (2_415_919_104, 0));
    assert_eq!(key_halves(0x0000_0001_0000_0002), (1, 2));
    assert_eq!(key_halves(-1), (u32::MAX, u32::MAX));
}

#[test]
fn app_identity_prefers_the_app_id() {
    let env = |id: Option<&str>, name: Option<&str>| {
        let (id, name) = (id.map(str::to_string), name.map(str::to_string));
        app_identity_from(move |var| match var {
            "HEROKU_APP_ID" => id.clone(),
            "HEROKU_APP_NAME" => name.clone(),
            _ => None,
        })
    };
    assert_eq!(env(Some("0b3c"), Some("shop")), "0b3c");
    assert_eq!(env(None, Some("shop")), "shop");
    assert_eq!(env(Some(" "), Some("shop")), "shop");
    assert_eq!(env(None, None), "preheat");
}

#[test]
fn url_parts_are_decoded() {
    let target =
        Target::parse("postgresql://us%40er:p%3Ass@db.example.com:6000/my%20db").expect("valid");
    assert_eq!(target.host, Host::Tcp("db.example.com".into()));
    assert_eq!(target.port, 6000);
    assert_eq!(target.user.as_deref(), Some("us@er"));
    assert_eq!(target.password.as_deref(), Some("p:ss"));
    assert_eq!(target.dbname.as_deref(), Some("my db"));
    assert_eq!(target.label(), "db.example.com:6000/my db");

    let target = Target::parse("postgres://u@[::1]/d").expect("valid");
    assert_eq!(target.host, Host::Tcp("::1".into()));
    assert_eq!(target.port, 5432);
    assert_eq!(target.label(), "[::1]:5432/d");

    let target =
        Target::parse("postgres:///app?host=/var/run/postgresql&port=5433").expect("valid");
    assert_eq!(target.host, Host::Socket("/var/run/postgresql".into()));
    assert_eq!(target.port, 5433);
    assert_eq!(target.tls, Tls::Disable);

    let target = Target::parse("postgres://app@db.example.com").expect("valid");
    assert_eq!(
        target.dbname_or_user(),
        "app",
        "libpq's default database is the user's"
    );
}

#[test]
fn sslmode_rule() {
    let tls = |url: &str| Target::parse(url).expect("valid").tls;
    // Not given: TLS for remote hosts (Heroku), plain for this machine.
    assert_eq!(
        tls("postgres://u:p@ec2-1-2-3-4.compute-1.amazonaws.com:5432/d"),
        Tls::Require
    );
    assert_eq!(tls("postgres://u:p@10.0.0.5/d"), Tls::Require);
    assert_eq!(tls("postgres://u:p@localhost/d"), Tls::Disable);
    assert_eq!(tls("postgres://u:p@127.0.0.1:5432/d"), Tls::Disable);
    assert_eq!(tls("postgres://u:p@[::1]:5432/d"), Tls::Disable);
    // Given: as libpq reads it.
    assert_eq!(tls("postgres://h/d?sslmode=disable"), Tls::Disable);
    assert_eq!(tls("postgres://h/d?sslmode=allow"), Tls::Prefer);
    assert_eq!(tls("postgres://localhost/d?sslmode=prefer"), Tls::Prefer);
    assert_eq!(tls("postgres://localhost/d?sslmode=require"), Tls::Require);
    assert_eq!(tls("postgres://h/d?sslmode=verify-ca"), Tls::VerifyCa);
    assert_eq!(tls("postgres://h/d?sslmode=verify-full"), Tls::VerifyFull);
    let error = Target::parse("postgres://h/d?sslmode=on").expect_err("invalid");
    assert!(
        error.to_string().contains("`sslmode=on` is not one of"),
        "{error}"
    );
}

#[test]
fn bad_urls_are_clear_and_never_show_the_password() {
    for (url, expected) in [
        (
            format!("postgres://u:{PASSWORD}@db.example.com:notaport/d"),
            "invalid port number",
        ),
        (
            format!("mysql://u:{PASSWORD}@db.example.com/d"),
            "scheme is `mysql`",
        ),
        (format!("u:{PASSWORD}@@db.example.com"), "not usable"),
        ("   ".to_string(), "it is empty"),
        (
            format!("postgres://u:{PASSWORD}@h/d?port=x"),
            "`port=x` is not a port number",
        ),
    ] {
        let error = Target::parse(&url).expect_err("invalid");
        let text = error.to_string();
        assert!(matches!(error, LockError::BadUrl { .. }), "{text}");
        assert!(text.contains(expected), "{url}: {text}");
        assert!(
            text.contains("postgres://app@db.example.com:5432/app"),
            "{text}"
        );
        assert_no_password(&text);
    }
}

#[test]
fn debug_of_a_target_hides_the_password() {
    let target = Target::parse(&format!("postgres://u:{PASSWORD}@h/d")).expect("valid");
    assert_no_password(&format!("{target:?}"));
}

#[test]
fn pooler_urls_get_a_warning() {
    let warn = |url: &str, env: Vec<(&str, &str)>| {
        let target = Target::parse(url).expect("valid");
        pooler_warning(
            &target,
            url,
            env.into_iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    };
    let text = warn("postgres://u:p@db.example.com:6432/d", vec![]).expect("port 6432");
    assert!(text.contains("port 6432"), "{text}");
    assert!(text.contains("silently ineffective"), "{text}");
    assert!(text.contains("`lock_url`"), "{text}");
    assert!(warn("postgres://u:p@aws-0-eu.pooler.supabase.com:5432/d", vec![]).is_some());
    assert!(warn("postgres://u:p@my-pgbouncer.internal:5432/d", vec![]).is_some());
    assert!(warn("postgres://u:p@127.0.0.1:6000/db1", vec![]).is_some());
    let pooled = "postgres://u:p@ec2-1-2-3-4.compute-1.amazonaws.com:5432/d";
    let text = warn(pooled, vec![("DATABASE_CONNECTION_POOL_URL", pooled)]).expect("pool var");
    assert!(text.contains("DATABASE_CONNECTION_POOL_URL"), "{text}");
    assert!(warn(pooled, vec![("DATABASE_URL_PGBOUNCER", pooled)]).is_some());
    // The direct URL is fine, even when a pool exists beside it.
    assert_eq!(
        warn(
            pooled,
            vec![(
                "DATABASE_CONNECTION_POOL_URL",
                "postgres://u:p@other:5432/d"
            )]
        ),
        None
    );
    assert_eq!(warn("postgres://u:p@localhost:5432/d", vec![]), None);
}

#[test]
fn wait_and_timeout_messages_name_the_holder() {
    let holder = Holder {
        pid: 4242,
        application_name: Some(APPLICATION_NAME.to_string()),
        client_addr: Some("10.1.2.3".to_string()),
        since: Some("2026-05-01 12:00:00 UTC".to_string()),
        for_how_long: Some(Duration::from_secs(75)),
    };
    let wait = WaitInfo {
        holder: Some(holder.clone()),
        waited: Duration::from_secs(20),
        timeout: Duration::from_mins(10),
    };
    assert_eq!(
        wait.to_string(),
        "waiting for migration lock held by pid 4242 (preheat migration lock, from 10.1.2.3) \
         since 2026-05-01 12:00:00 UTC, 1m15s ago (waited 20.0s of 10m)"
    );
    let error = LockError::Timeout {
        target: "db.example.com:5432/d".to_string(),
        waited: Duration::from_mins(10),
        holder: Some(Box::new(holder)),
    };
    let text = error.to_string();
    assert!(
        text.starts_with("Gave up waiting for the migration lock on db.example.com:5432/d after 10m00s: it is held by pid 4242"),
        "{text}"
    );
    assert!(text.contains("heroku pg:kill 4242"), "{text}");
    assert!(text.contains("lock_timeout"), "{text}");
    let unknown = LockError::Timeout {
        target: "h:5432/d".to_string(),
        waited: Duration::from_secs(1),
        holder: None,
    };
    assert!(unknown.to_string().contains("not visible"), "{unknown}");
}

#[test]
fn missing_lock_url_variable_is_named() {
    let spec = LockSpec {
        kind: crate::config::LockKind::Postgres,
        url: crate::config::template::Template::parse("${PREHEAT_TEST_SURELY_UNSET_DB_URL}")
            .expect("valid"),
        timeout: Duration::from_secs(1),
    };
    let error =
        acquire_for(&spec, Duration::from_mins(1), &mut no_wait).expect_err("unset variable");
    let text = error.to_string();
    assert!(
        text.contains("`PREHEAT_TEST_SURELY_UNSET_DB_URL` is not set"),
        "{text}"
    );
}

#[test]
fn closed_port_is_refused_clearly_without_the_password() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let url = format!("postgres://app:{PASSWORD}@127.0.0.1:{port}/d");
    let started = Instant::now();
    let error = acquire(
        &url,
        &app("refused"),
        Duration::from_secs(5),
        Duration::from_secs(5),
        &mut no_wait,
    )
    .expect_err("nothing listens");
    let text = error.to_string();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "returned within 15 s"
    );
    assert!(text.contains(&format!("127.0.0.1:{port}/d")), "{text}");
    assert!(
        text.contains("Connection refused") || text.contains("connection refused"),
        "{text}"
    );
    assert!(text.contains("check the host and port"), "{text}");
    assert_no_password(&text);
    assert_no_password(&format!("{error:?}"));
}

#[test]
fn a_server_that_never_answers_fails_within_the_connect_timeout() {
    // Accepts TCP (the kernel's backlog) but never speaks PostgreSQL: a hung server.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    for mode in ["disable", "require"] {
        let url = format!("postgres://app:{PASSWORD}@127.0.0.1:{port}/d?sslmode={mode}");
        let started = Instant::now();
        let error = acquire(
            &url,
            &app("hung"),
            Duration::from_secs(30),
            Duration::from_secs(1),
            &mut no_wait,
        )
        .expect_err("no answer");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "returned within 15 s"
        );
        assert!(
            matches!(error, LockError::ConnectTimeout { .. }),
            "{error:?}"
        );
        let text = error.to_string();
        assert!(
            text.contains(&format!(
                "127.0.0.1:{port}/d for the migration lock: no answer within 1.0s"
            )),
            "{text}"
        );
        assert_no_password(&text);
    }
    drop(listener);
}

#[test]
fn a_server_without_tls_is_explained_when_tls_is_required() {
    // A stand-in that answers the SSLRequest with 'N', as a server without TLS does.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        use std::io::Read;
        if let Ok((mut socket, _)) = listener.accept() {
            let mut request = [0u8; 8];
            if socket.read_exact(&mut request).is_ok() {
                let _ = socket.write_all(b"N");
            }
            let _ = socket.read(&mut request);
        }
    });
    let url = format!("postgres://app:{PASSWORD}@127.0.0.1:{port}/d?sslmode=require");
    let error = acquire(
        &url,
        &app("notls"),
        Duration::from_secs(5),
        Duration::from_secs(5),
        &mut no_wait,
    )
    .expect_err("no TLS");
    let text = error.to_string();
    assert!(text.contains("server does not support TLS"), "{text}");
    assert!(text.contains("?sslmode=disable"), "{text}");
    assert_no_password(&text);
    let _ = server.join();
}

// ---- real server ----

#[test]
fn acquire_release_and_a_second_release_waits_for_the_first() {
    let Some(url) = server_url() else { return };
    let app = app("wait");
    let first = acquire(
        &url,
        &app,
        Duration::from_secs(5),
        DEFAULT_CONNECT_TIMEOUT,
        &mut no_wait,
    )
    .expect("the first release takes the lock");
    let first_pid = first.pid();
    assert_eq!(first.key(), key_for(&url, &app));
    assert!(
        first.describe().contains(&format!("as pid {first_pid}")),
        "{}",
        first.describe()
    );
    let holder = holder_of(&url, first.key()).expect("pg_locks shows the holder");
    assert_eq!(holder.pid, first_pid);
    assert_eq!(holder.application_name.as_deref(), Some(APPLICATION_NAME));

    let second = std::thread::spawn({
        let (url, app) = (url.clone(), app.clone());
        move || {
            let mut waits = Vec::new();
            let lock = acquire(
                &url,
                &app,
                Duration::from_secs(30),
                DEFAULT_CONNECT_TIMEOUT,
                &mut |w| {
                    waits.push(w);
                },
            );
            (lock, waits)
        }
    });
    // Give the second one time to find the lock taken and report it.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !second.is_finished(),
        "the second release must wait while the first holds the lock"
    );
    first.release().expect("release");

    let (lock, waits) = second.join().expect("no panic");
    let lock = lock.expect("the second release gets the lock after the first releases");
    assert_ne!(lock.pid(), first_pid);
    assert!(
        lock.waited() >= Duration::from_secs(1),
        "it waited: {:?}",
        lock.waited()
    );
    let first_report = waits.first().expect("the wait was reported");
    let text = first_report.to_string();
    assert!(
        text.starts_with(&format!(
            "waiting for migration lock held by pid {first_pid} (preheat migration lock"
        )),
        "{text}"
    );
    assert!(text.contains(" since ") && text.contains(" UTC"), "{text}");
    assert_eq!(
        holder_of(&url, lock.key()).map(|h| h.pid),
        Some(lock.pid()),
        "now the second holds it"
    );
    lock.release().expect("release");
    assert_eq!(holder_of(&url, key_for(&url, &app)), None, "released");
}

#[test]
fn lock_timeout_names_the_holder_pid() {
    let Some(url) = server_url() else { return };
    let app = app("timeout");
    let held = acquire(
        &url,
        &app,
        Duration::from_secs(5),
        DEFAULT_CONNECT_TIMEOUT,
        &mut no_wait,
    )
    .expect("lock");
    let started = Instant::now();
    let mut reports = 0;
    let error = acquire(
        &url,
        &app,
        Duration::from_secs(2),
        DEFAULT_CONNECT_TIMEOUT,
        &mut |_| {
            reports += 1;
        },
    )
    .expect_err("held by the first");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "it waited the full lock_timeout"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "and gave up soon after"
    );
    assert_eq!(reports, 1, "one report at the start, then one every 10 s");
    let LockError::Timeout { holder, .. } = &error else {
        panic!("expected a timeout, got {error:?}");
    };
    assert_eq!(holder.as_ref().map(|h| h.pid), Some(held.pid()));
    let text = error.to_string();
    assert!(
        text.starts_with("Gave up waiting for the migration lock on 127.0.0.1:"),
        "{text}"
    );
    assert!(
        text.contains(&format!("held by pid {}", held.pid())),
        "{text}"
    );
    assert!(
        text.contains(&format!("heroku pg:kill {}", held.pid())),
        "{text}"
    );
    held.release().expect("release");
}

#[test]
fn a_killed_holder_releases_the_lock() {
    let Some(url) = server_url() else { return };
    let app = app("killed");
    let key = key_for(&url, &app);
    // Another OS process takes the lock and sits idle holding it, as preheat
    // does while a migration runs.
    let mut holder = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("psql is installed (postgresql-client)");
    let mut stdin = holder.stdin.take().expect("stdin");
    writeln!(stdin, "SELECT pg_advisory_lock({key});").expect("write to psql");
    stdin.flush().expect("flush");
    let deadline = Instant::now() + Duration::from_secs(15);
    let pid = loop {
        if let Some(h) = holder_of(&url, key) {
            break h.pid;
        }
        assert!(Instant::now() < deadline, "psql never took the lock");
        std::thread::sleep(Duration::from_millis(100));
    };
    let error = acquire(
        &url,
        &app,
        Duration::from_millis(600),
        DEFAULT_CONNECT_TIMEOUT,
        &mut no_wait,
    )
    .expect_err("psql holds it");
    assert!(error.to_string().contains(&format!("pid {pid}")), "{error}");

    holder.kill().expect("SIGKILL psql");
    let _ = holder.wait();
    drop(stdin);
    let started = Instant::now();
    let lock = acquire(
        &url,
        &app,
        Duration::from_secs(15),
        DEFAULT_CONNECT_TIMEOUT,
        &mut no_wait,
    )
    .expect("the lock went with the killed process's connection");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "within a few seconds"
    );
    lock.release().expect("release");
}

#[test]
fn a_dropped_lock_is_freed() {
    let Some(url) = server_url() else { return };
    let app = app("dropped");
    let lock = acquire(
        &url,
        &app,
        Duration::from_secs(5),
        DEFAULT_CONNECT_TIMEOUT,
        &mut no_wait,
    )
    .expect("lock");
    drop(lock);
    let again = acquire(
        &url,
        &app,
        Duration::from_secs(10),
        DEFAULT_CONNECT_TIMEOUT,
        &mut no_wait,
    )
    .expect("free again once the connection closed");
    again.release().expect("release");
}

#[test]
fn a_lost_connection_is_reported_on_release() {
    let Some(url) = server_url() else { return };
    let app = app("lost");
    let lock = acquire(
        &url,
        &app,
        Duration::from_secs(5),
        DEFAULT_CONNECT_TIMEOUT,
        &mut no_wait,
    )
    .expect("lock");
    let probe = connect(
        &Target::parse(&url).expect("valid"),
        DEFAULT_CONNECT_TIMEOUT,
    )
    .expect("probe");
    let pid = lock.pid();
    probe
        .runtime
        .block_on(query_one(
            &probe.client,
            "SELECT pg_terminate_backend($1)",
            &[&pid],
        ))
        .expect("terminate");
    let error = lock.release().expect_err("the session is gone");
    let text = error.to_string();
    assert!(
        text.starts_with("Lost the migration lock on 127.0.0.1:"),
        "{text}"
    );
    assert!(text.contains("another release may have migrated"), "{text}");
}

#[test]
fn wrong_database_name_is_explained() {
    let Some(url) = server_url() else { return };
    let parsed = url::Url::parse(&url).expect("valid");
    let mut wrong = parsed.clone();
    wrong.set_path("/preheat_no_such_database");
    let _ = wrong.set_password(Some(PASSWORD));
    let error = acquire(
        wrong.as_str(),
        &app("nodb"),
        Duration::from_secs(5),
        DEFAULT_CONNECT_TIMEOUT,
        &mut no_wait,
    )
    .expect_err("no such database");
    let text = error.to_string();
    assert!(
        text.contains("FATAL: database \"preheat_no_such_database\" does not exist"),
        "{text}"
    );
    assert!(text.contains("Check the database name"), "{text}");
    assert_no_password(&text);
}

#[test]
fn tls_require_and_verification() {
    let Some(url) = server_url() else { return };
    let Some(ca) = server_tls_ca() else { return };
    let app = app("tls");
    let ssl_of = |lock: &MigrationLock| -> bool {
        let pid = lock.pid();
        lock.session
            .runtime
            .block_on(query_one(
                &lock.session.client,
                "SELECT ssl FROM pg_stat_ssl WHERE pid = $1",
                &[&pid],
            ))
            .expect("pg_stat_ssl")
            .get(0)
    };

    // require: encrypted, certificate not checked (it is self-signed here).
    let lock = acquire(
        &with_param(&url, "sslmode=require"),
        &app,
        Duration::from_secs(5),
        DEFAULT_CONNECT_TIMEOUT,
        &mut no_wait,
    )
    .expect("sslmode=require connects");
    assert!(ssl_of(&lock), "the session is encrypted");
    lock.release().expect("release");

    // No sslmode on 127.0.0.1: plain.
    let lock = acquire(
        &url,
        &app,
        Duration::from_secs(5),
        DEFAULT_CONNECT_TIMEOUT,
        &mut no_wait,
    )
    .expect("plain");
    assert!(!ssl_of(&lock), "loopback without sslmode is plain");
    lock.release().expect("release");

    // verify-full against the public roots: a self-signed certificate fails, clearly.
    let error = acquire(
        &with_param(&url, "sslmode=verify-full"),
        &app,
        Duration::from_secs(5),
        DEFAULT_CONNECT_TIMEOUT,
        &mut no_wait,
    )
    .expect_err("self-signed");
    let text = error.to_string();
    assert!(text.contains("certificate"), "{text}");
    assert!(text.contains("sslrootcert="), "{text}");

    // verify-full with the CA and the name in the certificate (localhost): connects.
    let by_name = url.replace("127.0.0.1", "localhost");
    let lock = acquire(
        &with_param(&by_name, &format!("sslmode=verify-full&sslrootcert={ca}")),
        &app,
        Duration::from_secs(5),
        DEFAULT_CONNECT_TIMEOUT,
        &mut no_wait,
    )
    .expect("verified");
    assert!(ssl_of(&lock));
    lock.release().expect("release");

    // By IP the name does not match: verify-full refuses, verify-ca accepts.
    let by_ip = with_param(&url, &format!("sslmode=verify-full&sslrootcert={ca}"));
    let error = acquire(
        &by_ip,
        &app,
        Duration::from_secs(5),
        DEFAULT_CONNECT_TIMEOUT,
        &mut no_wait,
    )
    .expect_err("name mismatch");
    assert!(error.to_string().contains("certificate"), "{error}");
    let lock = acquire(
        &with_param(&url, &format!("sslmode=verify-ca&sslrootcert={ca}")),
        &app,
        Duration::from_secs(5),
        DEFAULT_CONNECT_TIMEOUT,
        &mut no_wait,
    )
    .expect("verify-ca ignores the name");
    lock.release().expect("release");

    // A missing CA file is named.
    let error = acquire(
        &with_param(&url, "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"),
        &app,
        Duration::from_secs(5),
        DEFAULT_CONNECT_TIMEOUT,
        &mut no_wait,
    )
    .expect_err("no CA file");
    assert!(
        error
            .to_string()
            .contains("sslrootcert=/nonexistent/ca.pem"),
        "{error}"
    );
}
