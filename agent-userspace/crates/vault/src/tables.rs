//! The vault's tables in the shared redb database. Everything is prefixed `vault_` so the
//! audit log (and anyone else) can share the file without collisions.

use redb::TableDefinition;

/// secret name -> encoded sealed record (see `record.rs`).
pub const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("vault_secrets");
/// secret name -> JSON usage `{"last_used_ms":..,"used_by":[..]}`; unauthenticated bookkeeping.
pub const USAGE: TableDefinition<&str, &[u8]> = TableDefinition::new("vault_usage");
/// Vault-wide metadata, keys below.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("vault_meta");

/// `nonce || AES-GCM(known plaintext)`: proves at open that the key is the right one.
pub const META_KEY_CHECK: &str = "key_check";
/// 32-byte key fingerprint; picks between `<keyfile>` and `<keyfile>.next` after a crash.
pub const META_FINGERPRINT: &str = "key_fingerprint";
/// JSON argon2id parameters, present only while the key is passphrase-derived.
pub const META_KDF: &str = "kdf";
/// `nonce || AES-GCM(JSON name -> version map)`: detects rolled-back or deleted records.
pub const META_MANIFEST: &str = "manifest";
