//! Accounts, sessions and share links on a real store (SQLite, or Postgres when
//! INOCULAB_TEST_DATABASE_URL names a server): passwords checked with Argon2, tokens stored
//! only as digests, expiry and revocation honoured, roles respected.

use engine::accounts::{self, AccountError, Role, SessionView};
use engine::Store;

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_for_test(dir.path()).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO models (id, name, kind, path, architecture, n_params, size_bytes, sha256)
         VALUES (1, 'tiny', 'hf', '/nowhere', 'llama', 0, 0, 'test');
         INSERT INTO datasets (id, name, source, recipe, content_hash, row_count)
         VALUES (1, 'toy', 'import', '{}', 'hash', 0);
         INSERT INTO experiments (id, name, spec, spec_hash, model_id, dataset_id) VALUES (7, 'shared', '{}', 'h', 1, 1);",
    )
    .execute(store.pool())
    .await
    .unwrap();
    (dir, store)
}

async fn scalar(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(store.pool()).await.unwrap()
}

#[tokio::test]
async fn sign_in_checks_the_password_and_sessions_end() {
    let (_dir, store) = store().await;
    accounts::add_user(&store, "ada", "correct horse battery", Role::Owner).await.unwrap();
    accounts::add_user(&store, "bob", "another long password", Role::Viewer).await.unwrap();
    for (name, password, says) in [
        ("ada", "short", "10-1024 characters"),
        ("ada", "correct horse battery", "already a user"),
        ("a b", "correct horse battery", "a user name is"),
        ("", "correct horse battery", "a user name is"),
    ] {
        let e = accounts::add_user(&store, name, password, Role::Editor).await.unwrap_err().to_string();
        assert!(e.contains(says), "{name} {password}: {e}");
    }
    // Passwords are stored as Argon2id hashes, never as given.
    let stored: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE name = 'ada'").fetch_one(store.pool()).await.unwrap();
    assert!(stored.starts_with("$argon2id$") && !stored.contains("horse"), "{stored}");

    for (name, password) in [("ada", "wrong password!"), ("nobody", "correct horse battery"), ("ada", "")] {
        assert!(matches!(accounts::sign_in(&store, name, password).await, Err(AccountError::WrongPassword)));
    }
    let (token, who) = accounts::sign_in(&store, "ada", "correct horse battery").await.unwrap();
    assert_eq!(who, SessionView { name: "ada".into(), role: Role::Owner });
    assert_eq!(token.len(), 64);
    assert_eq!(accounts::session(&store, &token).await.unwrap(), Some(who.clone()));
    // Only the token's digest is stored.
    let stored: String = sqlx::query_scalar("SELECT token_sha256 FROM sessions").fetch_one(store.pool()).await.unwrap();
    assert_ne!(stored, token);
    assert_eq!(accounts::session(&store, &stored).await.unwrap(), None, "the stored digest opens nothing");
    assert_eq!(accounts::session(&store, "x").await.unwrap(), None);

    // Expiry: a session past its time opens nothing.
    sqlx::query("UPDATE sessions SET expires_at = 0").execute(store.pool()).await.unwrap();
    assert_eq!(accounts::session(&store, &token).await.unwrap(), None);
    // Sign-out, and a new password, end sessions.
    let (token, _) = accounts::sign_in(&store, "ada", "correct horse battery").await.unwrap();
    accounts::sign_out(&store, &token).await.unwrap();
    assert_eq!(accounts::session(&store, &token).await.unwrap(), None);
    let (token, _) = accounts::sign_in(&store, "bob", "another long password").await.unwrap();
    accounts::set_password(&store, "bob", "a brand new password").await.unwrap();
    assert_eq!(accounts::session(&store, &token).await.unwrap(), None);
    assert!(accounts::sign_in(&store, "bob", "a brand new password").await.is_ok());

    // The last owner stays; others go with their sessions.
    let e = accounts::remove_user(&store, "ada").await.unwrap_err().to_string();
    assert!(e.contains("last owner"), "{e}");
    accounts::remove_user(&store, "bob").await.unwrap();
    assert_eq!(scalar(&store, "SELECT COUNT(*) FROM sessions WHERE user_name = 'bob'").await, 0);
    assert_eq!(accounts::users(&store).await.unwrap(), vec![SessionView { name: "ada".into(), role: Role::Owner }]);
    assert!(accounts::has_owner(&store).await.unwrap());
}

#[tokio::test]
async fn share_links_open_one_report_until_revoked_or_expired() {
    let (_dir, store) = store().await;
    accounts::add_user(&store, "owner", "owner password", Role::Owner).await.unwrap();
    accounts::add_user(&store, "ed", "editor password", Role::Editor).await.unwrap();
    accounts::add_user(&store, "eve", "editor password", Role::Editor).await.unwrap();
    accounts::add_user(&store, "val", "viewer password", Role::Viewer).await.unwrap();
    let who = |name: &str, role| SessionView { name: name.into(), role };

    let link = accounts::create_share_link(&store, 7, Some("ed"), None).await.unwrap();
    let token = link.path.strip_prefix("/share/").unwrap().to_string();
    assert_eq!(token.len(), 64);
    assert!(!token.starts_with(&link.link.id), "the listed handle must not reveal the token");
    assert_eq!(accounts::shared_experiment(&store, &token).await.unwrap(), Some(7));
    // The last character changed (to '1' when it was '0': one token in 16 ends in '0').
    let changed = format!("{}{}", &token[..63], if token.ends_with('0') { '1' } else { '0' });
    for wrong in ["", "x", &token[..63], &changed, &"g".repeat(64)] {
        assert_eq!(accounts::shared_experiment(&store, wrong).await.unwrap(), None, "{wrong}");
    }
    let e = accounts::create_share_link(&store, 8, None, None).await.unwrap_err().to_string();
    assert!(e.contains("experiment 8 not found"), "{e}");
    let e = accounts::create_share_link(&store, 7, None, Some(0)).await.unwrap_err().to_string();
    assert!(e.contains("1-3650 days"), "{e}");

    // Only an owner, or the editor who made it, revokes; a viewer never.
    for by in [who("eve", Role::Editor), who("val", Role::Viewer)] {
        let e = accounts::revoke_share_link(&store, &link.link.id, Some(&by)).await.unwrap_err();
        assert!(matches!(e, AccountError::Forbidden(_)), "{by:?}: {e}");
    }
    assert_eq!(accounts::shared_experiment(&store, &token).await.unwrap(), Some(7));
    accounts::revoke_share_link(&store, &link.link.id, Some(&who("ed", Role::Editor))).await.unwrap();
    assert_eq!(accounts::shared_experiment(&store, &token).await.unwrap(), None);

    let second = accounts::create_share_link(&store, 7, Some("ed"), Some(7)).await.unwrap();
    let second_token = second.path.strip_prefix("/share/").unwrap().to_string();
    accounts::revoke_share_link(&store, &second.link.id, Some(&who("owner", Role::Owner))).await.unwrap();
    assert_eq!(accounts::shared_experiment(&store, &second_token).await.unwrap(), None);

    let third = accounts::create_share_link(&store, 7, None, Some(1)).await.unwrap();
    let third_token = third.path.strip_prefix("/share/").unwrap().to_string();
    assert_eq!(accounts::shared_experiment(&store, &third_token).await.unwrap(), Some(7));
    sqlx::query("UPDATE share_links SET expires_at = 1 WHERE id = $1")
        .bind(&third.link.id)
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(accounts::shared_experiment(&store, &third_token).await.unwrap(), None);

    let listed = accounts::share_links(&store, Some(7)).await.unwrap();
    assert_eq!(listed.len(), 3);
    let states: Vec<(bool, bool)> = listed.iter().map(|l| (l.revoked, l.expired)).collect();
    assert_eq!(states.iter().filter(|s| s.0).count(), 2);
    assert_eq!(states.iter().filter(|s| s.1).count(), 1);
    // Removing the editor keeps the links, without a maker.
    accounts::remove_user(&store, "ed").await.unwrap();
    assert!(accounts::share_links(&store, None).await.unwrap().iter().all(|l| l.created_by.is_none()));
}
