//! API bearer tokens: a token is `dvsan_<id>_<secret>`; the inventory keeps
//! only the SHA-256 of the secret, so a stolen database grants nothing.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::FromRow;

use super::{Inventory, InventoryError, now};

/// A token as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq, FromRow, Serialize)]
pub struct TokenRow {
    /// Its public id (the part after `dvsan_`).
    pub id: String,
    /// What it is for, as its creator named it.
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of its last successful use.
    pub last_used: Option<i64>,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).expect("the operating system's random source");
    hex::encode(buf)
}

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl Inventory {
    /// Creates a token named `name`; returns it and the full bearer string,
    /// which is shown once and never stored.
    pub async fn create_token(&self, name: &str) -> Result<(TokenRow, String), InventoryError> {
        let id = random_hex(6);
        let secret = random_hex(24);
        let created_at = now();
        sqlx::query(
            "INSERT INTO api_tokens (id, name, secret_sha256, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&id)
        .bind(name)
        .bind(digest(&secret))
        .bind(created_at)
        .execute(&self.pool)
        .await?;
        let bearer = format!("dvsan_{id}_{secret}");
        let row = TokenRow {
            id,
            name: name.to_string(),
            created_at,
            last_used: None,
        };
        Ok((row, bearer))
    }

    /// Every token, newest first.
    pub async fn tokens(&self) -> Result<Vec<TokenRow>, InventoryError> {
        Ok(sqlx::query_as(
            "SELECT id, name, created_at, last_used FROM api_tokens ORDER BY created_at DESC, id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Revokes a token by id; returns whether it existed.
    pub async fn revoke_token(&self, id: &str) -> Result<bool, InventoryError> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Checks a bearer string; on success returns its token (and notes the
    /// use).
    pub async fn check_token(&self, bearer: &str) -> Result<Option<TokenRow>, InventoryError> {
        let Some(rest) = bearer.strip_prefix("dvsan_") else {
            return Ok(None);
        };
        let Some((id, secret)) = rest.split_once('_') else {
            return Ok(None);
        };
        let row: Option<TokenRow> = sqlx::query_as(
            "SELECT id, name, created_at, last_used FROM api_tokens \
             WHERE id = $1 AND secret_sha256 = $2",
        )
        .bind(id)
        .bind(digest(secret))
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = &row {
            sqlx::query("UPDATE api_tokens SET last_used = $1 WHERE id = $2")
                .bind(now())
                .bind(&row.id)
                .execute(&self.pool)
                .await?;
        }
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_token_checks_until_revoked() {
        let inv = Inventory::open("sqlite::memory:").await.unwrap();
        let (row, bearer) = inv.create_token("ci").await.unwrap();
        assert!(bearer.starts_with(&format!("dvsan_{}_", row.id)));
        let found = inv.check_token(&bearer).await.unwrap().unwrap();
        assert_eq!(found.id, row.id);
        assert!(inv.tokens().await.unwrap()[0].last_used.is_some());
        assert!(inv.check_token("dvsan_nope_nope").await.unwrap().is_none());
        let tampered = format!("{}x", bearer);
        assert!(inv.check_token(&tampered).await.unwrap().is_none());
        assert!(inv.revoke_token(&row.id).await.unwrap());
        assert!(inv.check_token(&bearer).await.unwrap().is_none());
    }
}
