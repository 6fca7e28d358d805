//! The key ring: signing keys in the database (private halves encrypted with the master key),
//! parsed once and cached in memory. Rotation is a database transaction under a lock, so any
//! number of instances agree on one active key per algorithm.
//!
//! Lifecycle of a key: `next` (published in the JWKS, signs nothing) -> `active` (signs) ->
//! `retired` (published until everything it signed has expired) -> deleted.
use super::secrets::MasterKey;
use super::signing::{Alg, PublicKey, SigningError, SigningKey};
use crate::clock::{Clock, Rng};
use crate::store::entities::signing_key;
use crate::store::signing_keys::{self, ACTIVE as STATE_ACTIVE, NEXT as STATE_NEXT};
use crate::store::{take_lock, write_tx, Db, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Signing(#[from] SigningError),
    #[error("signing key {0} cannot be decrypted with this master key")]
    Decrypt(String),
    #[error("no active {0:?} signing key")]
    NoActiveKey(Alg),
}

impl From<crate::store::conn::DbErr> for KeyError {
    fn from(e: crate::store::conn::DbErr) -> Self {
        KeyError::Store(e.into())
    }
}

#[derive(Default)]
struct Cache {
    active: HashMap<Alg, Arc<SigningKey>>,
    public: HashMap<String, PublicKey>,
    /// JWKS order: newest first.
    order: Vec<String>,
    loaded_at_ms: i64,
}

pub struct KeyRing {
    db: Db,
    master: Arc<MasterKey>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Rng>,
    rotation_interval: i64,
    publish_ahead: i64,
    retire_for: i64,
    cache: RwLock<Cache>,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct RotationReport {
    pub created: Vec<String>,
    pub activated: Vec<String>,
    pub retired: Vec<String>,
    pub deleted: usize,
}

impl KeyRing {
    pub fn new(
        db: Db,
        master: Arc<MasterKey>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Rng>,
        rotation_interval: i64,
        publish_ahead: i64,
        retire_for: i64,
    ) -> Self {
        Self {
            db,
            master,
            clock,
            rng,
            rotation_interval,
            publish_ahead,
            retire_for,
            cache: RwLock::new(Cache::default()),
        }
    }

    fn aad(kid: &str) -> String {
        format!("signing_key:{kid}")
    }

    /// Re-reads every published key from the database.
    pub async fn reload(&self) -> Result<(), KeyError> {
        let now = self.clock.now();
        let rows = signing_keys::all(&self.db).await?;
        let mut cache = Cache { loaded_at_ms: self.clock.now_ms(), ..Default::default() };
        let mut rows: Vec<_> = rows.into_iter().filter(|r| r.expires_at.is_none_or(|e| e > now)).collect();
        rows.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.kid.cmp(&a.kid)));
        for row in rows {
            let Some(alg) = Alg::parse(&row.alg) else {
                continue;
            };
            let public: PublicKey = serde_json::from_str(&row.public_jwk)
                .map_err(|e| StoreError::Corrupt(format!("public key {}: {e}", row.kid)))?;
            if row.state == STATE_ACTIVE {
                let der = self
                    .master
                    .open(&row.private_enc, &Self::aad(&row.kid))
                    .map_err(|_| KeyError::Decrypt(row.kid.clone()))?;
                let key = SigningKey::from_pkcs8(alg, row.kid.clone(), &der)?;
                cache.active.insert(alg, Arc::new(key));
            }
            cache.order.push(row.kid.clone());
            cache.public.insert(row.kid, public);
        }
        let mut guard = self.cache.write().unwrap_or_else(|e| e.into_inner());
        *guard = cache;
        Ok(())
    }

    pub fn signer(&self, alg: Alg) -> Result<Arc<SigningKey>, KeyError> {
        let guard = self.cache.read().unwrap_or_else(|e| e.into_inner());
        guard.active.get(&alg).cloned().ok_or(KeyError::NoActiveKey(alg))
    }

    /// The public key for `kid`; on a miss, reloads from the database (at most every 5 s) so a key
    /// created by another instance is found.
    pub async fn public_key(&self, kid: &str) -> Option<PublicKey> {
        let loaded_at = {
            let guard = self.cache.read().unwrap_or_else(|e| e.into_inner());
            if let Some(k) = guard.public.get(kid) {
                return Some(k.clone());
            }
            guard.loaded_at_ms
        };
        if self.clock.now_ms() - loaded_at < 5000 {
            return None;
        }
        if let Err(e) = self.reload().await {
            tracing::warn!(error = %e, "reloading signing keys failed");
            return None;
        }
        let guard = self.cache.read().unwrap_or_else(|e| e.into_inner());
        guard.public.get(kid).cloned()
    }

    /// The JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        let guard = self.cache.read().unwrap_or_else(|e| e.into_inner());
        let keys: Vec<&PublicKey> = guard.order.iter().filter_map(|k| guard.public.get(k)).collect();
        serde_json::json!({ "keys": keys })
    }

    async fn create_key(
        &self,
        tx: &crate::store::conn::Tx,
        alg: Alg,
        state: &str,
        now: i64,
    ) -> Result<String, KeyError> {
        let kid = format!("{}-{}", alg.as_str().to_ascii_lowercase(), &crate::ids::random128(&*self.rng)[..16]);
        let (key, der) = SigningKey::generate(alg, kid.clone())?;
        let row = signing_key::Model {
            kid: kid.clone(),
            alg: alg.as_str().into(),
            state: state.into(),
            private_enc: self.master.seal(&der, &Self::aad(&kid), &*self.rng),
            public_jwk: serde_json::to_string(key.public()).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            created_at: now,
            activated_at: (state == STATE_ACTIVE).then_some(now),
            retired_at: None,
            expires_at: None,
        };
        signing_keys::insert(tx, row).await?;
        Ok(kid)
    }

    /// Brings the key set to its desired state. With `force`, every algorithm's already
    /// published `next` key becomes active now (and a new `next` is created).
    pub async fn rotate(&self, force: bool) -> Result<RotationReport, KeyError> {
        let now = self.clock.now();
        let mut report = RotationReport::default();
        let tx = write_tx(&self.db).await?;
        take_lock(&tx, "signing_keys", "rotate", now).await?;
        report.deleted = signing_keys::delete_expired(&tx, now).await? as usize;
        let rows = signing_keys::all(&tx).await?;
        for alg in Alg::ALL {
            let mine: Vec<_> = rows.iter().filter(|r| r.alg == alg.as_str()).collect();
            let active = mine.iter().filter(|r| r.state == STATE_ACTIVE).max_by_key(|r| r.activated_at);
            let next = mine.iter().filter(|r| r.state == STATE_NEXT).min_by_key(|r| r.created_at);
            let due = match active {
                None => true,
                Some(a) => force || now - a.activated_at.unwrap_or(a.created_at) >= self.rotation_interval,
            };
            let mut next_used = false;
            if due {
                let ready = next.filter(|n| force || active.is_none() || now - n.created_at >= self.publish_ahead);
                let new_active = match ready {
                    Some(n) => {
                        signing_keys::activate(&tx, (*n).clone(), now).await?;
                        next_used = true;
                        Some(n.kid.clone())
                    }
                    // Bootstrap: nothing has been signed yet, so a key may start signing at once.
                    None if active.is_none() => Some(self.create_key(&tx, alg, STATE_ACTIVE, now).await?),
                    None => None,
                };
                if let Some(kid) = new_active {
                    for old in mine.iter().filter(|r| r.state == STATE_ACTIVE) {
                        signing_keys::retire(&tx, (*old).clone(), now, now + self.retire_for).await?;
                        report.retired.push(old.kid.clone());
                    }
                    report.activated.push(kid);
                }
            }
            if next.is_none() || next_used {
                report.created.push(self.create_key(&tx, alg, STATE_NEXT, now).await?);
            }
        }
        tx.commit().await?;
        if !report.activated.is_empty() || !report.retired.is_empty() {
            tracing::info!(activated = ?report.activated, retired = ?report.retired, "signing keys rotated");
        }
        self.reload().await?;
        Ok(report)
    }

    /// Every key row, for `fedgate keys list`.
    pub async fn list(&self) -> Result<Vec<signing_key::Model>, KeyError> {
        Ok(signing_keys::all(&self.db).await?)
    }
}
