//! Generated Platform API answers: valid releases and dynos with fields
//! removed or of the wrong type, truncated bodies, random JSON and bytes,
//! huge arrays and bodies over the cap. Each decodes, or fails as a
//! `BadResponse` that names the request, within a time bound.

use super::client::{MAX_ANSWER, decode, error_from_text};
use super::*;
use crate::fuzz::{Tally, bounded, heavy_runner, runner};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};

static MUTATED: Tally = Tally::new("API JSON, valid answers with fields removed or retyped");
static TRUNCATED: Tally = Tally::new("API JSON, truncated bodies");
static RANDOM: Tally = Tally::new("API JSON, random JSON and bytes");
static HUGE: Tally = Tally::new("API JSON, huge arrays and bodies over the cap");

fn release_json(version: u64) -> Value {
    json!({
        "id": "01234567-89ab-cdef-0123-456789abcdef",
        "version": version,
        "status": "succeeded",
        "current": true,
        "description": "Deploy 3f2e1a9b",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:01Z",
        "slug": { "id": "11111111-89ab-cdef-0123-456789abcdef" },
        "app": { "id": "22222222-89ab-cdef-0123-456789abcdef", "name": "my-app" },
        "user": { "id": "33333333-89ab-cdef-0123-456789abcdef", "email": "a@example.com" },
        "addon_plan_names": [],
        "output_stream_url": null,
    })
}

fn dyno_json(n: usize) -> Value {
    json!({
        "id": format!("d{n}"),
        "name": format!("web.{n}"),
        "type": "web",
        "state": "up",
        "release": { "id": "01234567-89ab-cdef-0123-456789abcdef", "version": 42 },
        "command": "gunicorn app:app",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:01Z",
        "size": "Standard-1X",
        "app": { "id": "22222222-89ab-cdef-0123-456789abcdef", "name": "my-app" },
        "attach_url": null,
    })
}

/// Decodes `body` as every answer the client reads, and uses what decodes.
fn check(body: Vec<u8>, tally: &Tally) -> Result<(), TestCaseError> {
    tally.add();
    let errors = bounded("API answer", move || {
        let request = "GET /apps/my-app/dynos";
        let mut errors = Vec::new();
        match decode::<Release>(&body, request) {
            Ok(release) => {
                let _ = await_live::commit(release.description.as_deref());
            }
            Err(error) => errors.push(error),
        }
        match decode::<Vec<Release>>(&body, request) {
            Ok(list) => {
                let _ = list.into_iter().max_by_key(|r| r.version);
            }
            Err(error) => errors.push(error),
        }
        match decode::<Vec<Dyno>>(&body, request) {
            Ok(mut dynos) => {
                by_name(&mut dynos);
                for dyno in &dynos {
                    let _ = (dyno.line(), dyno.is_up(), dyno.version());
                }
            }
            Err(error) => errors.push(error),
        }
        if let Err(error) = decode::<Dyno>(&body, request) {
            errors.push(error);
        }
        let shown = error_from_text(&String::from_utf8_lossy(&body));
        (errors, shown.message.len())
    });
    let (errors, message_len) = errors;
    // 200 characters, each at most 4 bytes, plus the ellipsis.
    prop_assert!(message_len <= 804, "{message_len} bytes of error message");
    for error in errors {
        let ApiError::BadResponse { request, error } = &error else {
            return Err(TestCaseError::fail(format!("not a BadResponse: {error}")));
        };
        prop_assert_eq!(request, "GET /apps/my-app/dynos");
        prop_assert!(!error.is_empty() && error.len() < 1024, "{error}");
    }
    Ok(())
}

fn hostile_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(1e300)),
        any::<String>().prop_map(Value::from),
        select(&["up", "crashed", "starting", "web", "v42", "42", "web.1", ""][..])
            .prop_map(Value::from),
        Just(json!([])),
        Just(json!({})),
        Just(json!({ "version": "42" })),
        Just(json!([{ "version": 42 }])),
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    Remove(Index),
    Retype(Index, Value),
    Add(String, Value),
}

fn edit(value: &mut Value, edit: &Edit) {
    let Some(object) = value.as_object_mut() else {
        return;
    };
    let keys: Vec<String> = object.keys().cloned().collect();
    match edit {
        Edit::Remove(at) if !keys.is_empty() => {
            object.remove(&keys[at.index(keys.len())]);
        }
        Edit::Retype(at, new) if !keys.is_empty() => {
            object.insert(keys[at.index(keys.len())].clone(), new.clone());
        }
        Edit::Add(key, new) => {
            object.insert(key.clone(), new.clone());
        }
        Edit::Remove(_) | Edit::Retype(..) => {}
    }
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    proptest::collection::vec(
        prop_oneof![
            any::<Index>().prop_map(Edit::Remove),
            (any::<Index>(), hostile_json()).prop_map(|(at, v)| Edit::Retype(at, v)),
            ("[a-z_]{0,8}", hostile_json()).prop_map(|(k, v)| Edit::Add(k, v)),
        ],
        1..4,
    )
}

/// A valid answer with a few edits: one object, or a list whose one item is edited.
fn mutated() -> impl Strategy<Value = Value> {
    (
        any::<bool>(),
        any::<bool>(),
        0usize..4,
        edits(),
        any::<Index>(),
    )
        .prop_map(|(release, list, extra, edits, at)| {
            let one = |n: usize| {
                if release {
                    release_json(n as u64 + 1)
                } else {
                    dyno_json(n + 1)
                }
            };
            if list {
                let mut items: Vec<Value> = (0..=extra).map(one).collect();
                let pick = at.index(items.len());
                for e in &edits {
                    edit(&mut items[pick], e);
                }
                Value::Array(items)
            } else {
                let mut item = one(extra);
                for e in &edits {
                    edit(&mut item, e);
                }
                item
            }
        })
}

#[test]
fn valid_answers_with_fields_removed_or_retyped_decode_or_fail_named() {
    let result = runner(4000).run(&mutated(), |value| {
        check(serde_json::to_vec(&value).unwrap_or_default(), &MUTATED)
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    MUTATED.report();
    assert!(MUTATED.get() > 0);
}

#[test]
fn truncated_bodies_fail_named() {
    let result = runner(3000).run(&(mutated(), any::<Index>()), |(value, at)| {
        let mut body = serde_json::to_vec(&value).unwrap_or_default();
        body.truncate(at.index(body.len()));
        check(body, &TRUNCATED)
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    TRUNCATED.report();
    assert!(TRUNCATED.get() > 0);
}

#[test]
fn random_json_and_bytes_decode_or_fail_named() {
    let tree = hostile_json().prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    select(
                        &[
                            "id",
                            "name",
                            "type",
                            "state",
                            "release",
                            "version",
                            "status",
                            "current",
                            "description",
                            "message"
                        ][..]
                    )
                    .prop_map(str::to_string),
                    any::<String>(),
                ],
                inner,
                0..8,
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    });
    let strategy = prop_oneof![
        3 => tree.prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
        1 => proptest::collection::vec(any::<u8>(), 0..256),
        1 => "[\\[\\]{}:,\"0-9a-z.eE+-]{0,64}".prop_map(String::into_bytes),
    ];
    let result = runner(4000).run(&strategy, |body| check(body, &RANDOM));
    if let Err(error) = result {
        panic!("{error}");
    }
    RANDOM.report();
    assert!(RANDOM.get() > 0);
}

#[test]
fn huge_arrays_and_bodies_over_the_cap_fail_fast() {
    let strategy = prop_oneof![
        (1usize..5_000).prop_map(|n| {
            serde_json::to_vec(&Value::Array((0..n).map(dyno_json).collect())).unwrap_or_default()
        }),
        (1usize..200_000)
            .prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()),
        Just(format!("[{}]", vec!["1"; 3 << 20].join(",")).into_bytes()),
        Just(format!("{{\"message\": \"{}\"}}", "x".repeat(5 << 20)).into_bytes()),
    ];
    let result = heavy_runner(8).run(&strategy, |body| {
        let over = body.len() as u64 > MAX_ANSWER;
        if over {
            let error = decode::<Vec<Dyno>>(&body, "GET /x").map(drop);
            prop_assert!(
                matches!(&error, Err(ApiError::BadResponse { error, .. }) if error.contains("larger than 4 MB")),
                "{error:?}"
            );
        }
        check(body, &HUGE)
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    HUGE.report();
    assert!(HUGE.get() > 0);
}
