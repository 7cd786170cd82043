//! Config tests: secrets stay out of Debug output, env expansion, validation
//! errors name the key.

use super::load::expand_str;
use super::*;

#[test]
fn debug_output_has_no_secrets() {
    let c = Config::from_toml(
        "[[users]]\nname = \"app\"\npassword = \"s3cret-user\"\n\
         [backends.old]\nkind = \"mysql\"\nurl = \"mysql://u:s3cret-old@h:3306/d\"\n\
         [backends.new]\nkind = \"postgres\"\nurl = \"postgres://u:s3cret-new@h/d?sslmode=require\"\n",
        |_| None,
    )
    .unwrap();
    let shown = format!(
        "{c:?} {:?} {:?}",
        c.backends.old.target().unwrap(),
        c.backends.new.as_ref().unwrap().target().unwrap()
    );
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("mysql://u:***@h:3306/d"), "{shown}");
    assert_eq!(redact_url("postgres://u@h/d"), "postgres://u@h/d");
}

const BASE: &str = r#"
    listen = "127.0.0.1:3307"
    phase = "primary_only"
    [[users]]
    name = "app"
    password = "${APP_PASSWORD}"
    [backends.old]
    kind = "mysql"
    url = "mysql://app:${OLD_PASSWORD}@127.0.0.1:3306/app"
    [backends.new]
    kind = "postgres"
    url = "postgres://app:${NEW_PASSWORD}@127.0.0.1:5432/app"
"#;

fn env(k: &str) -> Option<String> {
    match k {
        "APP_PASSWORD" => Some("s3cret".into()),
        "OLD_PASSWORD" => Some("p%40ss".into()),
        "NEW_PASSWORD" => Some("pg".into()),
        _ => None,
    }
}

#[test]
fn example_config_parses_with_env() {
    let c = Config::from_toml(BASE, env).expect("valid");
    assert_eq!(c.users[0].password.as_deref(), Some("s3cret"));
    let t = c.backends.old.target().unwrap();
    assert_eq!(t.password, "p@ss");
    assert_eq!(t.port, 3306);
    assert_eq!(t.database.as_deref(), Some("app"));
    assert_eq!(c.backends.old.pool_size, 100);
    assert_eq!(c.backends.new.unwrap().kind, BackendKind::Postgres);
}

#[test]
fn the_shipped_proxy_toml_is_valid() {
    let text = include_str!("../../proxy.toml");
    Config::from_toml(text, |_| Some("x".into())).expect("proxy.toml must stay valid");
}

fn err(text: &str) -> String {
    Config::from_toml(text, env).unwrap_err().to_string()
}

#[test]
fn unknown_key_is_named() {
    let e = err(&BASE
        .replace("pool_size", "x")
        .replace("kind = \"mysql\"", "kind = \"mysql\"\npool_sise = 3"));
    assert!(e.contains("backends.old") && e.contains("pool_sise"), "{e}");
}

#[test]
fn wrong_type_is_named() {
    let e = err(&BASE.replace("kind = \"mysql\"", "kind = \"mysql\"\npool_size = \"ten\""));
    assert!(e.contains("backends.old.pool_size"), "{e}");
}

#[test]
fn missing_env_var_is_named() {
    let e = err(&BASE.replace("${APP_PASSWORD}", "${NOPE}"));
    assert!(e.contains("users[0].password") && e.contains("NOPE"), "{e}");
}

#[test]
fn bad_values_are_rejected() {
    assert!(err(&BASE.replace("127.0.0.1:3307", "nowhere")).starts_with("listen:"));
    assert!(Config::from_toml(&BASE.replace("\"primary_only\"", "\"new_only\""), env).is_ok());
    let mysql_new = BASE
        .replace("kind = \"postgres\"", "kind = \"mysql\"")
        .replace("postgres://", "mysql://");
    assert!(err(&mysql_new.replace("\"primary_only\"", "\"new_primary\"")).contains("PostgreSQL"));
    let no_new = BASE
        .split("[backends.new]")
        .next()
        .unwrap()
        .replace("\"primary_only\"", "\"dual_write\"");
    assert!(err(&no_new).contains("backends.new"));
    assert!(err(&BASE.replace("\"primary_only\"", "\"sideways\"")).contains("phase"));
    assert!(err(&BASE.replace("mysql://", "postgres://")).contains("backends.old.url"));
    let bare = "listen = \"127.0.0.1:1\"\n[backends.old]\nkind=\"mysql\"\nurl=\"mysql://a@h/d\"\n";
    assert!(err(&format!("{bare}[auth]\nmode = \"users\"\n")).contains("users"));
}

#[test]
fn auth_mode_defaults_and_conflicts() {
    use crate::auth::mode::AuthMode;
    let bare = "listen = \"127.0.0.1:1\"\n[backends.old]\nkind=\"mysql\"\nurl=\"mysql://a@h/d\"\n";
    let c = Config::from_toml(bare, env).expect("no [[users]]: passthrough");
    assert_eq!(c.auth_mode(), AuthMode::Passthrough);
    assert_eq!(
        Config::from_toml(BASE, env).unwrap().auth_mode(),
        AuthMode::Users
    );
    let both = format!("{BASE}\n[auth]\nmode = \"passthrough\"\n");
    assert!(
        err(&both).contains("not used with [auth] mode"),
        "{}",
        err(&both)
    );
    let pg_primary = format!("phase = \"new_primary\"\n{bare}[backends.new]\nkind=\"postgres\"\nurl=\"postgres://u@h/d\"\n");
    assert!(
        err(&pg_primary).contains("auth.mode"),
        "{}",
        err(&pg_primary)
    );
    let bad_role = format!("{bare}[auth.roles]\napp = \"x; drop\"\n");
    assert!(
        err(&bad_role).contains("auth.roles.app"),
        "{}",
        err(&bad_role)
    );
    assert!(
        err(&BASE.replace("password = \"${APP_PASSWORD}\"", "password_sha1 = \"abc\""))
            .contains("password_sha1")
    );
    assert!(err("listen = [").contains("TOML") || err("listen = [").contains("line"));
}

#[test]
fn dollar_escapes() {
    assert_eq!(
        expand_str("a$$b${X}$", &|_| Some("v".into())).unwrap(),
        "a$bv$"
    );
    assert!(expand_str("${X", &|_| Some("v".into())).is_err());
}
