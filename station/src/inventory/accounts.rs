//! The web console's accounts: users with argon2id password hashes and a
//! role, and their login sessions. A session's cookie value is never
//! stored, only its SHA-256, and each session carries the CSRF token that
//! its forms send back.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::FromRow;

use super::{Inventory, InventoryError, now};

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Role {
    /// May change things.
    Admin,
    /// May look.
    Viewer,
}

impl Role {
    /// The stored label.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    /// Parses `admin` or `viewer`.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an account change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The user name is malformed.
    #[error("a user name is 1 to 32 of letters, digits, '.', '_' and '-'")]
    BadName,
    /// The password is too short or too long.
    #[error("a password is 8 to 128 characters")]
    BadPassword,
    /// The name is taken.
    #[error("user {0} exists already")]
    Exists(String),
    /// No such user.
    #[error("no user {0}")]
    NoSuchUser(String),
    /// The last admin cannot go.
    #[error("the last admin ({0}) cannot be deleted")]
    LastAdmin(String),
    /// Hashing failed (the argon2 parameters; not the password's fault).
    #[error("hashing the password: {0}")]
    Hash(String),
    /// The inventory failed.
    #[error(transparent)]
    Inventory(#[from] InventoryError),
}

impl From<sqlx::Error> for AccountError {
    fn from(e: sqlx::Error) -> Self {
        AccountError::Inventory(InventoryError::Database(e))
    }
}

/// A user as listed (never with the hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRow {
    /// Login name.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// Unix seconds.
    pub created_at: i64,
}

#[derive(FromRow)]
struct UserRecord {
    name: String,
    password_hash: String,
    role: String,
    created_at: i64,
}

impl UserRecord {
    fn row(self) -> UserRow {
        UserRow {
            name: self.name,
            // A role the code does not know grants the least.
            role: Role::parse(&self.role).unwrap_or(Role::Viewer),
            created_at: self.created_at,
        }
    }
}

/// A live session, found by its cookie value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Who is logged in.
    pub user: String,
    /// Their role now (a role change applies to live sessions).
    pub role: Role,
    /// The token every form of this session carries.
    pub csrf_token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A new session: the cookie value (given to the browser once) and its
/// CSRF token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The cookie value.
    pub id: String,
    /// The CSRF token.
    pub csrf_token: String,
}

/// `bytes` random bytes from the operating system, hex-encoded.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).expect("the operating system's random source");
    hex::encode(buf)
}

fn session_digest(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Checks a user name: 1 to 32 of `[A-Za-z0-9._-]`.
pub fn check_user_name(name: &str) -> Result<(), AccountError> {
    let ok = (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(AccountError::BadName)
    }
}

/// Hashes `password` with argon2id (OWASP's parameters, argon2's default),
/// on the blocking pool: it is deliberately slow.
async fn hash_password(password: String) -> Result<String, AccountError> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        getrandom::getrandom(&mut salt).expect("the operating system's random source");
        let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Hash(e.to_string()))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AccountError::Hash(e.to_string()))
    })
    .await
    .map_err(|e| AccountError::Hash(e.to_string()))?
}

/// Checks `password` against a PHC string, on the blocking pool.
async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A PHC string no password matches, verified against when the user does
/// not exist so that a login takes as long either way.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$\
                          2yH3Y0n0iSIo1k4JtJc8H5FEzF3F5q7s1Zr1v8t3ZWM";

impl Inventory {
    /// Adds a user with `password` hashed by argon2id.
    #[tracing::instrument(skip(self, password))]
    pub async fn add_user(
        &self,
        name: &str,
        password: &str,
        role: Role,
    ) -> Result<UserRow, AccountError> {
        check_user_name(name)?;
        if !(8..=128).contains(&password.chars().count()) {
            return Err(AccountError::BadPassword);
        }
        let hash = hash_password(password.to_owned()).await?;
        let created_at = now();
        let done = sqlx::query(
            "INSERT INTO users (name, password_hash, role, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(hash)
        .bind(role.as_str())
        .bind(created_at)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(AccountError::Exists(name.to_owned()));
        }
        Ok(UserRow {
            name: name.to_owned(),
            role,
            created_at,
        })
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<UserRow>, InventoryError> {
        let rows: Vec<UserRecord> =
            sqlx::query_as("SELECT name, password_hash, role, created_at FROM users ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(UserRecord::row).collect())
    }

    /// How many users there are.
    pub async fn user_count(&self) -> Result<i64, InventoryError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    /// Deletes a user and their sessions; the last admin stays.
    #[tracing::instrument(skip(self))]
    pub async fn delete_user(&self, name: &str) -> Result<(), AccountError> {
        let mut tx = self.pool.begin().await?;
        let role: Option<(String,)> = sqlx::query_as("SELECT role FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((role,)) = role else {
            return Err(AccountError::NoSuchUser(name.to_owned()));
        };
        if role == Role::Admin.as_str() {
            let (admins,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM users WHERE role = 'admin'")
                    .fetch_one(&mut *tx)
                    .await?;
            if admins <= 1 {
                return Err(AccountError::LastAdmin(name.to_owned()));
            }
        }
        sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Checks a login; the user on success. Takes an argon2 verification's
    /// time whether or not the user exists.
    #[tracing::instrument(skip(self, password))]
    pub async fn check_login(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Option<UserRow>, InventoryError> {
        let record: Option<UserRecord> = sqlx::query_as(
            "SELECT name, password_hash, role, created_at FROM users WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        let hash = record
            .as_ref()
            .map_or_else(|| DUMMY_HASH.to_owned(), |r| r.password_hash.clone());
        let matches = verify_password(password.to_owned(), hash).await;
        Ok(record.filter(|_| matches).map(UserRecord::row))
    }

    /// Opens a session for `user` that lasts `ttl_secs`.
    pub async fn create_session(
        &self,
        user: &str,
        ttl_secs: i64,
    ) -> Result<NewSession, InventoryError> {
        let id = random_token(32);
        let csrf_token = random_token(32);
        let at = now();
        // Expired sessions go whenever a new one comes.
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(at)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (id_sha256, user_name, csrf_token, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(session_digest(&id))
        .bind(user)
        .bind(&csrf_token)
        .bind(at)
        .bind(at + ttl_secs)
        .execute(&self.pool)
        .await?;
        Ok(NewSession { id, csrf_token })
    }

    /// The live session whose cookie value is `id`.
    pub async fn session(&self, id: &str) -> Result<Option<SessionRow>, InventoryError> {
        let row: Option<(String, String, String, i64)> = sqlx::query_as(
            "SELECT s.user_name, u.role, s.csrf_token, s.expires_at
             FROM sessions s JOIN users u ON u.name = s.user_name
             WHERE s.id_sha256 = $1 AND s.expires_at > $2",
        )
        .bind(session_digest(id))
        .bind(now())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(user, role, csrf_token, expires_at)| SessionRow {
            user,
            role: Role::parse(&role).unwrap_or(Role::Viewer),
            csrf_token,
            expires_at,
        }))
    }

    /// Ends the session whose cookie value is `id`.
    pub async fn end_session(&self, id: &str) -> Result<(), InventoryError> {
        sqlx::query("DELETE FROM sessions WHERE id_sha256 = $1")
            .bind(session_digest(id))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_user_logs_in_with_the_right_password_only() {
        let inv = Inventory::open("sqlite::memory:").await.unwrap();
        inv.add_user("alice", "correct horse", Role::Admin)
            .await
            .unwrap();
        let stored: (String,) = sqlx::query_as("SELECT password_hash FROM users")
            .fetch_one(&inv.pool)
            .await
            .unwrap();
        assert!(stored.0.starts_with("$argon2id$"), "{}", stored.0);
        assert_eq!(
            inv.check_login("alice", "correct horse")
                .await
                .unwrap()
                .map(|u| u.role),
            Some(Role::Admin)
        );
        assert!(
            inv.check_login("alice", "wrong horse")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            inv.check_login("bob", "correct horse")
                .await
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            inv.add_user("alice", "another one", Role::Viewer).await,
            Err(AccountError::Exists(_))
        ));
        assert!(matches!(
            inv.add_user("a b", "long enough", Role::Viewer).await,
            Err(AccountError::BadName)
        ));
        assert!(matches!(
            inv.add_user("carol", "short", Role::Viewer).await,
            Err(AccountError::BadPassword)
        ));
    }

    #[tokio::test]
    async fn sessions_are_found_by_cookie_until_ended_or_expired() {
        let inv = Inventory::open("sqlite::memory:").await.unwrap();
        inv.add_user("alice", "correct horse", Role::Viewer)
            .await
            .unwrap();
        let s = inv.create_session("alice", 3600).await.unwrap();
        let found = inv.session(&s.id).await.unwrap().unwrap();
        assert_eq!(found.user, "alice");
        assert_eq!(found.role, Role::Viewer);
        assert_eq!(found.csrf_token, s.csrf_token);
        let stored: (String,) = sqlx::query_as("SELECT id_sha256 FROM sessions")
            .fetch_one(&inv.pool)
            .await
            .unwrap();
        assert_ne!(stored.0, s.id, "the cookie value itself is not stored");
        inv.end_session(&s.id).await.unwrap();
        assert!(inv.session(&s.id).await.unwrap().is_none());
        let expired = inv.create_session("alice", -1).await.unwrap();
        assert!(inv.session(&expired.id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn the_last_admin_cannot_be_deleted_and_deleting_a_user_ends_their_sessions() {
        let inv = Inventory::open("sqlite::memory:").await.unwrap();
        inv.add_user("root", "correct horse", Role::Admin)
            .await
            .unwrap();
        inv.add_user("eve", "correct horse", Role::Viewer)
            .await
            .unwrap();
        assert!(matches!(
            inv.delete_user("root").await,
            Err(AccountError::LastAdmin(_))
        ));
        let s = inv.create_session("eve", 3600).await.unwrap();
        inv.delete_user("eve").await.unwrap();
        assert!(inv.session(&s.id).await.unwrap().is_none());
        assert_eq!(inv.user_count().await.unwrap(), 1);
        assert!(matches!(
            inv.delete_user("eve").await,
            Err(AccountError::NoSuchUser(_))
        ));
    }
}
